"""The webhooks feature's Celery side, thin: the tick (relay + fair dispatch of the due
deliveries to this process's sender threads or to Celery messages), one delivery, the
purge, and the nudge that asks for a tick right after a commit that changed tasks. The
work lives in ``outbox.py``, ``delivery.py`` and ``senders.py``.

The tick runs every ``WEBHOOK_RELAY_INTERVAL_SECONDS`` (default 1 s): that interval
bounds the latency.
"""

import logging
import threading
import time
from datetime import timedelta

from celery import Celery, shared_task
from flask import current_app, has_app_context

from taskapp import audit, metrics
from taskapp.extensions import db
from taskapp.jobs import purged as _purged
from taskapp.logs.models import ActivityLog
from taskapp.models import utcnow
from taskapp.webhooks import delivery, outbox
from taskapp.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from taskapp.webhooks.senders import senders
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
IDLE_NUDGER_SECONDS = 60
NUDGE_SPACING_SECONDS = 0.05
"""After a nudge, the next waits this long: a tick relays every commit made before it
starts, so under a stream of writes one message per 50 ms serves them all. With a Redis
broker, one message per commit cost 0.75 ms of worker CPU per POST (+25%); spaced, 0.05-0.28
ms, and changes 50-150 ms apart still reach a receiver in 20 ms (median) as before."""


class Nudger:
    """Asks for a webhook tick right after a commit that changed tasks, so a receiver
    hears of it in well under the beat interval. The request only sets an Event; one
    daemon thread per process sends the Celery message, so a slow or dead broker never
    holds a request (beat's tick every WEBHOOK_RELAY_INTERVAL_SECONDS remains the
    guarantee: a nudge lost is a second of latency, never an event). Nudges that come
    while one is being sent, or within NUDGE_SPACING_SECONDS after it, are coalesced
    into the next."""

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
                sent = {"nudged_at": time.time()}
                self.celery_app.send_task(TICK, kwargs=sent, expires=5, retry=False)
            except Exception as error:  # the broker is down: beat's ticks will do it
                log.warning("webhook nudge not sent (%s); beat's tick will relay", error)
                time.sleep(1)
            else:
                time.sleep(NUDGE_SPACING_SECONDS)  # commits meanwhile share the next one


def _nudge() -> None:
    if has_app_context():
        nudger = current_app.extensions.get("webhook_nudger")
        if nudger is not None:
            nudger.poke()


def install_listeners() -> None:
    """Nudge after every commit that wrote activity-log entries (once per process)."""
    audit.after_entries_commit(_nudge)


_last_tick_started = 0.0
"""Wall-clock start of this process's last tick (see :func:`webhooks_tick`)."""


@shared_task(name=TICK, ignore_result=True)
def webhooks_tick(nudged_at: float | None = None) -> int:
    """Relay new activity-log entries into deliveries, then hand out the due ones (see
    :func:`dispatch`). Run by beat every WEBHOOK_RELAY_INTERVAL_SECONDS and after
    commits that changed tasks (the nudge). Never waits on a receiver.

    A nudge sent (``nudged_at``, after its commit) before a tick of this process started
    is skipped: that tick already relayed the commit. When ticks queue up behind each
    other (a burst of commits), this keeps the queue from growing a tick per commit."""
    global _last_tick_started
    if nudged_at is not None and nudged_at < _last_tick_started:
        return 0
    _last_tick_started = time.time()
    render = current_app.extensions["render_task"]
    now = utcnow()
    created = 0
    while True:
        relayed = outbox.relay(db.session, now, render)
        db.session.commit()
        created += len(relayed.created)
        if relayed.claimed < outbox.RELAY_BATCH:
            break
    sent, queued = dispatch()
    if created or sent or queued:
        log.info(
            "webhooks: %d delivery(ies) created, %d sent at once, %d queued", created, sent, queued
        )
    return queued


def dispatch() -> tuple[int, int]:
    """Claim the due deliveries fairly (``outbox.claim_due``: a few per user and per
    webhook at a time, so one user's failing receivers never take everyone's turn) and
    hand them out: a first attempt to this process's senders at once (the common case
    crosses one polled queue, the tick's), a retry (or a first attempt the senders have
    no room for) as a Celery message for any worker. A broker that refuses leaves them
    for the next tick. Returns (handed to the senders, queued)."""
    pool = senders()
    lease = WebhookSettings.of(current_app).queue_lease_seconds
    claimed = outbox.claim_due(db.session, utcnow(), lease)
    db.session.commit()
    app = current_app._get_current_object()
    sent, queued = 0, []
    for item in claimed:
        if item.first_attempt and pool.submit(*_sending(app, item.id, first=True)):
            sent += 1
        else:
            queued.append(item.id)
    for position, delivery_id in enumerate(queued):
        try:
            deliver_webhook.apply_async((delivery_id,), retry=False)
        except Exception:
            log.warning("broker unavailable; %d delivery(ies) left for the next tick", len(queued))
            outbox.unqueue(db.session, queued[position:])
            db.session.commit()
            raise
    return sent, len(queued)


def _sending(app, delivery_id: int, *, first: bool):
    """What a sender thread runs: the attempt, then (its thread free again) another
    dispatch, so a backlog drains at the senders' pace rather than a tick's."""

    def send() -> None:
        with app.app_context():
            try:
                outcome = delivery.deliver(db.session, delivery_id, WebhookSettings.of(app))
            except Exception:  # the database: the lease expires, a later tick retries
                db.session.rollback()
                log.exception("webhook delivery %d failed", delivery_id)
                return
            if outcome is not None:
                count_delivery(delivery_id)
                how = " (first try, from the tick)" if first else ""
                result = outcome.status_code or outcome.error
                log.info("webhook delivery %d%s: %s", delivery_id, how, result)

    def more() -> None:
        with app.app_context():
            try:
                dispatch()
            except Exception:  # the broker or the database: beat's next tick does it
                db.session.rollback()
                log.warning("webhooks: dispatch after a send failed", exc_info=True)

    return send, more


@shared_task(name="taskapp.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    """Hand one delivery to this process's senders (the lease makes it one sender at a
    time); with no thread free, give it back to the next tick."""
    app = current_app._get_current_object()
    if not senders().submit(*_sending(app, delivery_id, first=False)):
        outbox.unqueue(db.session, [delivery_id])
        db.session.commit()


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
    days = WebhookSettings.of(current_app).delivery_retention_days
    return _purged(outbox.purge(db.session, utcnow() - timedelta(days=days)), "delivery(ies)")
