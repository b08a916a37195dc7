"""The transactional outbox: activity-log entries become webhook deliveries.

Every entry gets a ``webhook_outbox`` row from a trigger, in the entry's transaction
(migration 0004), so a change, its entry and its outbox row commit or roll back
together. :func:`relay` claims outbox rows with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL;
SQLite serialises writers), writes one delivery per matching webhook and deletes the
rows it claimed, all in one transaction. There is no id watermark: a transaction that
took a lower id but commits after a higher one simply leaves its row to be found by a
later relay, and two relays running at once never claim the same row.

Who hears what (the activity log's visibility rule, evaluated when the relay runs): an
ADMIN's webhook every entry; an INTERN's only entries whose ``assignee_id`` (the task's
assignee once the change was made) is the owner. A reassignment is heard by the new
assignee, not the previous one. Owners that are deactivated hear nothing.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import String, and_, delete, func, or_, select, type_coerce, update
from sqlalchemy.orm import Session

from taskapp.audit import from_json, to_json
from taskapp.logs.models import ActivityLog
from taskapp.models import Role
from taskapp.tasks.models import Task
from taskapp.users.models import User
from taskapp.visibility import may_see
from taskapp.webhooks.models import (
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookOutbox,
)

EVENT_OF_ACTION = {
    "CREATED": "task.created",
    "UPDATED": "task.updated",
    "STATUS_CHANGED": "task.updated",
    "DELETED": "task.deleted",
    "MARKED_OVERDUE": "task.overdue",
    "REMINDED": "task.reminder",
}
"""Activity-log action (by its stored value) -> webhook event."""
TASK_EVENTS = ("task.created", "task.updated", "task.deleted", "task.overdue", "task.reminder")
PING = "webhook.ping"
RELAY_BATCH = 500

RenderTask = Callable[[object], dict]
"""Dumps a task-like object in the API's shape (the tasks resource's TaskSchema, given
by the app factory: one definition of the task object)."""


def new_msg_id() -> str:
    return "msg_" + uuid.uuid4().hex


def body(event: str, timestamp: datetime, data: dict) -> str:
    message = {"type": event, "timestamp": to_json(timestamp), "data": data}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def event_data(entry, task: dict) -> dict:
    """The ``data`` of a task event: everything comes from the activity-log entry (its
    columns as :func:`relay` selects them) and the task object of its snapshot."""
    return {
        "task": task,
        "changes": entry.changes,
        "actor": entry.actor_id,
        "source": entry.source,
        "request_id": entry.request_id,
    }


ENTRY_COLUMNS = (
    ActivityLog.id,
    ActivityLog.task_id,
    ActivityLog.task_title,
    type_coerce(ActivityLog.action, String).label("action"),
    ActivityLog.changes,
    ActivityLog.actor_id,
    type_coerce(ActivityLog.source, String).label("source"),
    ActivityLog.assignee_id,
    ActivityLog.previous_assignee_id,
    ActivityLog.created_at,
    ActivityLog.task_snapshot,
    ActivityLog.request_id,
)
"""What a reader of the log needs of an entry (the message's inputs and its audience):
the relay and the event stream read the same columns."""


@dataclass
class Relayed:
    """What one :func:`relay` did: entries claimed and deliveries written (their ids)."""

    claimed: int = 0
    created: list[int] = field(default_factory=list)


def relay(session: Session, now: datetime, render_task: RenderTask) -> Relayed:
    """Turn up to RELAY_BATCH new entries into deliveries. The caller commits (the claim
    and the deliveries are one transaction)."""
    entry_ids = _claim_outbox(session)
    if not entry_ids:
        return Relayed()
    hooks = _active_webhooks(session)
    if not hooks:
        return Relayed(claimed=len(entry_ids))
    entries = session.execute(
        select(*ENTRY_COLUMNS).where(ActivityLog.id.in_(entry_ids)).order_by(ActivityLog.id)
    ).all()
    messages = entry_messages(session, entries, render_task)
    rows = []
    for entry in entries:
        if entry.id not in messages:
            continue
        event, message = messages[entry.id]
        for hook, role in hooks:
            if event in hook.events and may_see(role, hook.owner_id, entry.assignee_id):
                rows.append(_delivery(hook.id, event, message, now, entry_id=entry.id))
    if rows:
        session.add_all(rows)
        session.flush()
    return Relayed(claimed=len(entry_ids), created=[row.id for row in rows])


def entry_messages(session: Session, entries, render_task: RenderTask) -> dict[int, tuple]:
    """Entry id -> (event name, message body) for the entries that announce an event;
    the same bytes for a webhook and for the event stream."""
    tasks = _task_payloads(session, entries, render_task)
    messages = {}
    for entry in entries:
        event = EVENT_OF_ACTION.get(entry.action)
        if event is not None:
            data = event_data(entry, tasks[entry.id])
            messages[entry.id] = (event, body(event, entry.created_at, data))
    return messages


def ping(session: Session, webhook: Webhook, now: datetime) -> WebhookDelivery:
    delivery = _delivery(webhook.id, PING, body(PING, now, {"webhook": webhook.id}), now)
    session.add(delivery)
    session.flush()
    return delivery


def redeliver(session: Session, original: WebhookDelivery, now: datetime) -> WebhookDelivery:
    """The same message again (same ``msg_id`` and body), as a new delivery."""
    delivery = _delivery(
        original.webhook_id, original.event, original.body, now, entry_id=original.entry_id
    )
    delivery.msg_id = original.msg_id
    session.add(delivery)
    session.flush()
    return delivery


OWNER_IN_FLIGHT = 4
"""Deliveries of one user's webhooks claimed (queued or being sent) at once, across all
processes: what one user's slow or failing receivers can take of the senders."""
WEBHOOK_IN_FLIGHT = 2
"""The same, per webhook: a user's healthy webhook is not starved by their failing ones."""


@dataclass
class Claimed:
    id: int
    first_attempt: bool


def claim_due(session: Session, now: datetime, queue_lease: float, limit: int = 500) -> list:
    """Deliveries whose next attempt is due and that no worker holds or was just sent,
    fairly: oldest first, but never more than OWNER_IN_FLIGHT per owner and
    WEBHOOK_IN_FLIGHT per webhook counting those already in flight, so a user whose
    receivers fail or hang cannot take everyone's turn. Marks them queued for
    ``queue_lease`` seconds and returns them (:class:`Claimed`); the caller commits,
    then sends them.

    No row lock: the final UPDATE is conditional (a concurrent claimer that took a row
    first makes it skip that row), so two ticks never hand out one delivery twice."""
    busy_hooks, busy_owners = _in_flight(session, now)
    ranked = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.webhook_id,
            WebhookDelivery.attempts,
            WebhookDelivery.next_attempt_at,
            Webhook.owner_id,
            func.row_number()
            .over(
                partition_by=WebhookDelivery.webhook_id,
                order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
            )
            .label("turn"),
        )
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            _not_held(now),
            Webhook.is_active,
        )
        .subquery()
    )
    candidates = session.execute(
        select(ranked)
        .where(ranked.c.turn <= WEBHOOK_IN_FLIGHT)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
    ).all()
    chosen = {}
    for row in candidates:
        if len(chosen) >= limit:
            break
        if busy_owners.get(row.owner_id, 0) >= OWNER_IN_FLIGHT:
            continue
        if busy_hooks.get(row.webhook_id, 0) >= WEBHOOK_IN_FLIGHT:
            continue
        busy_owners[row.owner_id] = busy_owners.get(row.owner_id, 0) + 1
        busy_hooks[row.webhook_id] = busy_hooks.get(row.webhook_id, 0) + 1
        chosen[row.id] = Claimed(row.id, row.attempts == 0)
    if not chosen:
        return []
    taken = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(list(chosen)), _not_held(now))
        .values(queued_until=now + timedelta(seconds=queue_lease))
        .returning(WebhookDelivery.id)
    ).scalars()
    return [chosen[i] for i in sorted(taken)]


def _not_held(now: datetime):
    return and_(
        or_(WebhookDelivery.queued_until.is_(None), WebhookDelivery.queued_until < now),
        or_(WebhookDelivery.sending_until.is_(None), WebhookDelivery.sending_until < now),
    )


def _in_flight(session: Session, now: datetime) -> tuple[dict, dict]:
    """Deliveries queued or being sent now, per webhook and per owner."""
    rows = session.execute(
        select(WebhookDelivery.webhook_id, Webhook.owner_id, func.count())
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            or_(WebhookDelivery.queued_until >= now, WebhookDelivery.sending_until >= now),
        )
        .group_by(WebhookDelivery.webhook_id, Webhook.owner_id)
    ).all()
    hooks, owners = {}, {}
    for webhook_id, owner_id, count in rows:
        hooks[webhook_id] = count
        owners[owner_id] = owners.get(owner_id, 0) + count
    return hooks, owners


def unqueue(session: Session, ids: list[int]) -> None:
    """Messages for these could not be sent (broker down): let the next tick retry."""
    session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(queued_until=None)
    )


def purge(session: Session, before: datetime) -> int:
    """Drop finished deliveries (and their attempts) created before ``before``."""
    return delete_deliveries(
        session,
        WebhookDelivery.created_at < before,
        WebhookDelivery.status != DeliveryStatus.PENDING,
    )


def delete_deliveries(session: Session, *where) -> int:
    """Deliveries matching ``where`` and their attempts (SQLite enforces no cascade)."""
    chosen = select(WebhookDelivery.id).where(*where)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(chosen)))
    return session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(chosen))).rowcount


def _delivery(webhook_id, event, message, now, entry_id=None) -> WebhookDelivery:
    return WebhookDelivery(
        webhook_id=webhook_id,
        msg_id=new_msg_id(),
        event=event,
        entry_id=entry_id,
        body=message,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def _claim_outbox(session: Session) -> list[int]:
    claimable = (
        select(WebhookOutbox.id)
        .order_by(WebhookOutbox.id)
        .limit(RELAY_BATCH)
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        delete(WebhookOutbox)
        .where(WebhookOutbox.id.in_(claimable))
        .returning(WebhookOutbox.entry_id)
    )
    return sorted(claimed.scalars())


def _active_webhooks(session: Session) -> list[tuple[Webhook, Role]]:
    query = (
        select(Webhook, User.role)
        .join(User, User.id == Webhook.owner_id)
        .where(Webhook.is_active, User.is_active)
    )
    return [(hook, role) for hook, role in session.execute(query)]


def _task_payloads(session: Session, entries, render_task: RenderTask) -> dict[int, dict]:
    """The task object of each entry, from its snapshot (the task as that change left
    it, written in the change's transaction), never from the task row as it is now: by
    then the task may have been edited, reassigned or deleted. An entry written before
    snapshots existed shows what the entry itself knows (id and title)."""
    user_ids = {e.task_snapshot["assigned_to_id"] for e in entries if e.task_snapshot}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())
    payloads = {}
    for entry in entries:
        if entry.task_snapshot is None:
            payloads[entry.id] = {"id": entry.task_id, "title": entry.task_title}
        else:
            payloads[entry.id] = render_task(_task_view(entry.task_snapshot, names))
    return payloads


def _task_view(snapshot: dict, names: dict) -> SimpleNamespace:
    """The task as its entry's snapshot left it, typed as the model types it."""
    values = {name: from_json(Task, name, value) for name, value in snapshot.items()}
    return SimpleNamespace(**values, assigned_to_username=names.get(snapshot["assigned_to_id"]))
