"""Celery wiring (the pattern of Flask's "Background Tasks with Celery") and the thin
periodic tasks; the work itself lives in the domain modules (overdue.py, reminders.py,
mail.py, outbox.py, delivery.py, revocations.py, idempotency.py, personal_tokens.py).
The beat schedule is read from ``celerybeat_schedule.py``, its one place."""

import logging
import threading
import time
from datetime import date, timedelta

from celery import Celery, Task, shared_task
from flask import Flask, current_app, has_app_context
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from celerybeat_schedule import beat_schedule
from taskapp import (
    delivery,
    idempotency,
    mail,
    metrics,
    outbox,
    overdue,
    personal_tokens,
    reminders,
    revocations,
)
from taskapp.extensions import db
from taskapp.models import ActivityLog, DeliveryStatus, Webhook, WebhookDelivery, utcnow
from taskapp.models import Task as TaskRow

log = logging.getLogger(__name__)


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app from ``app.config["CELERY"]``; every task runs inside an
    application context of ``app``."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    _poll_embedded_broker_often(app.config["CELERY"]["broker_url"])
    celery_app.conf.beat_schedule = beat_schedule(app.config)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    app.extensions["webhook_nudger"] = Nudger(celery_app)
    _listen_for_task_commits()
    return celery_app


TICK = "taskapp.webhooks_tick"
NUDGE_KEY = "taskapp.webhook_nudge"
IDLE_NUDGER_SECONDS = 60


class Nudger:
    """Asks for a webhook tick right after a commit that changed tasks, so a receiver
    hears of it in well under the beat interval. The request only sets an Event; one
    daemon thread per process sends the Celery message, so a slow or dead broker never
    holds a request (beat's tick every WEBHOOK_RELAY_INTERVAL_SECONDS remains the
    guarantee: a nudge lost is a second of latency, never an event). Nudges that come
    while one is being sent are coalesced into the next."""

    def __init__(self, celery_app: Celery):
        self.celery_app = celery_app
        self.wanted = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def poke(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            with self.lock:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(
                        target=self._run, name="webhook-nudger", daemon=True
                    )
                    self.thread.start()
        self.wanted.set()

    def _run(self) -> None:
        while self.wanted.wait(timeout=IDLE_NUDGER_SECONDS):  # idle: end; poke restarts it
            self.wanted.clear()
            try:
                self.celery_app.send_task(TICK, expires=5, retry=False)
            except Exception as error:  # the broker is down: beat's ticks will do it
                log.warning("webhook nudge not sent (%s); beat's tick will relay", error)
                time.sleep(1)


def _note_task_writes(session: Session, _flush_context) -> None:
    if any(isinstance(o, TaskRow) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info[NUDGE_KEY] = True


def _nudge_after_commit(session: Session) -> None:
    if session.info.pop(NUDGE_KEY, False) and has_app_context():
        nudger = current_app.extensions.get("webhook_nudger")
        if nudger is not None:
            nudger.poke()


def _forget_rolled_back_writes(session: Session) -> None:
    session.info.pop(NUDGE_KEY, None)


def _listen_for_task_commits() -> None:
    """Installed once per process (SQLAlchemy's session events are global)."""
    if event.contains(Session, "after_commit", _nudge_after_commit):
        return
    event.listen(Session, "after_flush", _note_task_writes)
    event.listen(Session, "after_commit", _nudge_after_commit)
    event.listen(Session, "after_rollback", _forget_rolled_back_writes)


EMBEDDED_POLLING_SECONDS = 0.2


def _poll_embedded_broker_often(broker_url: str) -> None:
    """The embedded (SQLite) broker is polled; kombu's default of once a second would add
    up to 2 s to a webhook's latency (the tick, then the delivery message). Its
    transport passes every transport option on to ``create_engine``, so the interval is
    set on the transport class instead (this process only)."""
    if broker_url.startswith("sqla+"):
        from kombu.transport import sqlalchemy as sqla_transport

        sqla_transport.Transport.polling_interval = EMBEDDED_POLLING_SECONDS


@shared_task(
    name="taskapp.mark_overdue",
    acks_late=True,
    time_limit=300,
    soft_time_limit=240,
    autoretry_for=(DBAPIError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def mark_overdue(today: str | None = None) -> int:
    """Run the overdue sweep as the system actor; ``today`` (YYYY-MM-DD) for tests."""
    day = date.fromisoformat(today) if today else overdue.today(current_app.config)
    try:
        with metrics.OVERDUE_SWEEP.time():
            marked = overdue.mark_overdue(db.session, day)
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    metrics.OVERDUE_MARKED.inc(marked)
    log.info("overdue sweep marked %d task(s)", marked)
    return marked


@shared_task(
    name="taskapp.send_reminders",
    acks_late=True,
    time_limit=300,
    soft_time_limit=240,
    autoretry_for=(DBAPIError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=3,
)
def send_reminders() -> int:
    """Announce the due reminders (see ``reminders``), then enqueue their e-mails."""
    reminded, _owed = run_reminder_sweep()
    log.info("reminder sweep announced %d reminder(s)", len(reminded))
    return len(reminded)


def run_reminder_sweep() -> tuple[list[int], list[int]]:
    """The sweep and its commit, then one mail task per owed e-mail. The mails are
    owed in the database before they are enqueued: a broker that is down now delays
    them until a later sweep enqueues them again (``REMINDER_MAIL_RESEND_AFTER_SECONDS``)."""
    config = current_app.config
    resend_after = timedelta(seconds=config["REMINDER_MAIL_RESEND_AFTER_SECONDS"])
    try:
        with metrics.REMINDER_SWEEP.time():
            reminded, owed = reminders.announce(
                db.session, utcnow(), mail=bool(config["SMTP_URL"]), resend_after=resend_after
            )
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    metrics.REMINDERS_ANNOUNCED.inc(len(reminded))
    enqueue_mails(owed)
    return reminded, owed


def enqueue_mails(task_ids: list[int]) -> None:
    for task_id in task_ids:
        try:
            send_reminder_mail.delay(task_id)
        except (BrokerError, OSError):
            log.warning("broker unreachable: %d reminder mail(s) stay owed", len(task_ids))
            return


@shared_task(
    name="taskapp.send_reminder_mail",
    acks_late=True,
    time_limit=120,
    autoretry_for=(OSError, DBAPIError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def send_reminder_mail(task_id: int) -> bool:
    """E-mail the reminder of ``task_id`` to its assignee, once. A mail server that is
    down raises (smtplib's errors are OSErrors): the claim rolls back, the mail stays
    owed and Celery retries with exponential backoff."""
    config = current_app.config
    if not config["SMTP_URL"]:
        return False
    try:
        reminder = reminders.claim_mail(db.session, task_id)
        if reminder is not None:
            message = mail.reminder_message(reminder, config["REMINDER_MAIL_FROM"])
            mail.send(config["SMTP_URL"], message)
        db.session.commit()
    except Exception:
        db.session.rollback()
        metrics.REMINDER_MAILS.labels("failed").inc()
        raise
    if reminder is not None:
        metrics.REMINDER_MAILS.labels("sent").inc()
        log.info("reminder mail for task %d sent to %s", task_id, reminder["email"])
    return reminder is not None


def _purged(count: int, what: str) -> int:
    """Commit a purge the domain function just made, and log how many rows it dropped."""
    db.session.commit()
    log.info("purged %d %s", count, what)
    return count


@shared_task(name="taskapp.purge_revoked_tokens", ignore_result=True)
def purge_revoked_tokens() -> int:
    """Drop revocation rows for tokens that have expired anyway."""
    return _purged(revocations.purge_expired(db.session, utcnow()), "expired revocation(s)")


@shared_task(name="taskapp.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Drop Idempotency-Keys older than 24 h (their retries are no longer replayed)."""
    return _purged(idempotency.purge(db.session, utcnow()), "idempotency key(s)")


@shared_task(name="taskapp.purge_dead_personal_tokens", ignore_result=True)
def purge_dead_personal_tokens() -> int:
    """Drop personal access tokens that expired or were ended by an owner change."""
    return _purged(personal_tokens.purge_dead(db.session, utcnow()), "dead personal token(s)")


QUEUE_LEASE_SECONDS = 60
"""A delivery whose Celery message was sent is not queued again for this long (unless
a worker holds or finished it): the broker lost the message, or nobody took it."""
FIRST_TRY_BUDGET_SECONDS = 1.0
"""How long a tick may spend sending the first attempts of the deliveries it just wrote
before leaving the rest to Celery messages (checked before each send)."""


@shared_task(name=TICK, ignore_result=True)
def webhooks_tick() -> int:
    """Relay new activity-log entries into deliveries, send the first attempt of the new
    ones at once (see :func:`send_first_tries`), then queue the due deliveries: one
    Celery message each. Run by beat every WEBHOOK_RELAY_INTERVAL_SECONDS and after
    commits that changed tasks (the nudge)."""
    render = current_app.extensions["render_task"]
    now = utcnow()
    created, first_tries = 0, []
    while True:
        relayed = outbox.relay(db.session, now, render)
        db.session.commit()
        created += len(relayed.created)
        first_tries += relayed.to_healthy
        if relayed.claimed < outbox.RELAY_BATCH:
            break
    sent = send_first_tries(first_tries)
    queued = queue_due()
    if created or queued:
        log.info(
            "webhooks: %d delivery(ies) created, %d sent at once, %d queued", created, sent, queued
        )
    return queued


def send_first_tries(ids: list[int]) -> int:
    """Send, from the tick, the first attempt of deliveries it just wrote to webhooks
    with no failing streak: the common case then crosses one polled queue (the tick's),
    not two. Each goes through :func:`delivery.deliver`, so the lease still makes it one
    sender at a time; what the budget leaves is queued by the same tick, and a tick
    killed mid-send leaves a lease that expires like a worker's. Returns how many were
    attempted."""
    config = current_app.config
    deadline = time.monotonic() + FIRST_TRY_BUDGET_SECONDS
    attempted = 0
    for delivery_id in ids:
        if time.monotonic() >= deadline:
            break
        try:
            outcome = delivery.deliver(db.session, delivery_id, config)
        except Exception:  # the database: the rest are queued; a lease taken expires
            db.session.rollback()
            log.exception("webhook delivery %d: first try failed", delivery_id)
            break
        attempted += 1
        if outcome is not None:
            count_delivery(delivery_id)
            result = outcome.status_code or outcome.error
            log.info("webhook delivery %d (first try, from the tick): %s", delivery_id, result)
    return attempted


def queue_due() -> int:
    """One Celery message per due delivery nobody holds (retries, pings, redeliveries,
    what a tick's budget left, messages a broker lost). A broker that refuses leaves
    them for the next tick."""
    ids = outbox.claim_due(db.session, utcnow(), QUEUE_LEASE_SECONDS)
    db.session.commit()
    for position, delivery_id in enumerate(ids):
        try:
            deliver_webhook.apply_async((delivery_id,), retry=False)
        except Exception:
            log.warning("broker unavailable; %d delivery(ies) left for the next tick", len(ids))
            outbox.unqueue(db.session, ids[position:])
            db.session.commit()
            raise
    return len(ids)


@shared_task(name="taskapp.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    """Send one delivery (claimed with a lease, so one worker at a time)."""
    try:
        outcome = delivery.deliver(db.session, delivery_id, current_app.config)
    except Exception:
        db.session.rollback()
        raise
    if outcome is not None:
        count_delivery(delivery_id)
        log.info("webhook delivery %d: %s", delivery_id, outcome.status_code or outcome.error)


DELIVERY_OUTCOME = {
    DeliveryStatus.SUCCEEDED: "succeeded",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.PENDING: "retried",
}


def count_delivery(delivery_id: int) -> None:
    """The delivery metrics of the attempt just recorded: its outcome (and ``disabled``
    when it disabled the webhook) and, for a first attempt, the lag from the change's
    commit. Reads the rows the attempt left in the session (no query but the entry's
    time on a first attempt)."""
    row = db.session.get(WebhookDelivery, delivery_id)
    hook = db.session.get(Webhook, row.webhook_id)
    metrics.WEBHOOK_DELIVERIES.labels(DELIVERY_OUTCOME.get(row.status, "retried")).inc()
    if not hook.is_active:
        metrics.WEBHOOK_DELIVERIES.labels("disabled").inc()
    if row.attempts == 1:
        since = row.created_at
        if row.entry_id is not None:
            since = db.session.get(ActivityLog, row.entry_id).created_at
        metrics.WEBHOOK_LAG.observe(max((utcnow() - since).total_seconds(), 0.0))
    db.session.rollback()  # end the read: no transaction stays open between jobs


@shared_task(name="taskapp.purge_webhook_deliveries", ignore_result=True)
def purge_webhook_deliveries() -> int:
    """Drop finished deliveries older than WEBHOOK_DELIVERY_RETENTION_DAYS."""
    days = current_app.config["WEBHOOK_DELIVERY_RETENTION_DAYS"]
    return _purged(outbox.purge(db.session, utcnow() - timedelta(days=days)), "delivery(ies)")
