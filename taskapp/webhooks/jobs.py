"""The webhooks feature's Celery side, thin: the tick (relay + first tries + queue due
deliveries), one delivery, the purge, and the nudge that asks for a tick right after a
commit that changed tasks. The work lives in ``outbox.py`` and ``delivery.py``.

The tick runs every ``WEBHOOK_RELAY_INTERVAL_SECONDS`` (default 1 s): that interval
bounds the latency.
"""

import logging
import threading
import time
from datetime import timedelta

from celery import Celery, shared_task
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from taskapp.extensions import db
from taskapp.jobs import purged as _purged
from taskapp.models import Task as TaskRow
from taskapp.models import utcnow
from taskapp.webhooks import delivery, outbox
from taskapp.webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)


def beat_schedule(config) -> dict:
    return {
        "webhooks-tick": {
            "task": "taskapp.webhooks_tick",
            "schedule": timedelta(seconds=config["WEBHOOK_RELAY_INTERVAL_SECONDS"]),
            # a tick not taken within a few intervals is useless: the next one does its work
            "options": {"expires": max(5.0, 5 * config["WEBHOOK_RELAY_INTERVAL_SECONDS"])},
        },
        "purge-webhook-deliveries": {
            "task": "taskapp.purge_webhook_deliveries",
            "schedule": timedelta(hours=1),
        },
    }


def init_celery(app, celery_app) -> None:
    app.extensions["webhook_nudger"] = Nudger(celery_app)


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


def install_listeners() -> None:
    """Installed once per process (SQLAlchemy's session events are global)."""
    if event.contains(Session, "after_commit", _nudge_after_commit):
        return
    event.listen(Session, "after_flush", _note_task_writes)
    event.listen(Session, "after_commit", _nudge_after_commit)
    event.listen(Session, "after_rollback", _forget_rolled_back_writes)


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
    config = WebhookSettings.of(current_app)
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
        outcome = delivery.deliver(db.session, delivery_id, WebhookSettings.of(current_app))
    except Exception:
        db.session.rollback()
        raise
    if outcome is not None:
        log.info("webhook delivery %d: %s", delivery_id, outcome.status_code or outcome.error)


@shared_task(name="taskapp.purge_webhook_deliveries", ignore_result=True)
def purge_webhook_deliveries() -> int:
    """Drop finished deliveries older than WEBHOOK_DELIVERY_RETENTION_DAYS."""
    days = WebhookSettings.of(current_app).delivery_retention_days
    return _purged(outbox.purge(db.session, utcnow() - timedelta(days=days)), "delivery(ies)")
