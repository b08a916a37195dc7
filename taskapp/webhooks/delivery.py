"""Sending one webhook message: claim it, POST it signed, record what happened.

A worker first claims the delivery with a conditional UPDATE (a lease: ``sending_until``
= now + timeout + margin) and commits, so each message is sent by one worker at a time
however many workers and duplicate Celery messages there are. The HTTP request runs with
no database transaction open. A worker killed mid-request leaves the lease to expire;
the next tick queues the message again, with the same ``webhook-id``.

Outcomes: 2xx succeeds. 410 fails the message and disables the webhook. Anything else
(3xx included: redirects are never followed), a timeout, a connection error or a refused
address is retried on ``WEBHOOK_RETRY_SCHEDULE`` (attempt n+1 waits schedule[n]; 429's
``Retry-After`` is honoured when longer, up to a day); when the schedule is exhausted the
message fails. A webhook whose attempts have all failed for
``WEBHOOK_DISABLE_AFTER_SECONDS`` is disabled.
"""

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import urllib3
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from taskapp.models import utcnow
from taskapp.webhooks import signing, targets
from taskapp.webhooks.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from taskapp.webhooks.settings import WebhookSettings

LEASE_MARGIN_SECONDS = 15
MAX_RETRY_AFTER_SECONDS = 86400
USER_AGENT = "taskapp-webhooks/1.0"
ERROR_LENGTH = 500


@dataclass
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim(session: Session, delivery_id: int, now: datetime, timeout: float) -> bool:
    """Take the delivery if it is due and nobody holds it. The caller commits."""
    lease = now + timedelta(seconds=timeout * 2 + LEASE_MARGIN_SECONDS)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.sending_until.is_(None), WebhookDelivery.sending_until < now),
        )
        .values(sending_until=lease, queued_until=None)
    )
    return result.rowcount == 1


def live_secrets(webhook: Webhook, key: str, now: datetime) -> list[str]:
    secrets = [signing.decrypt(webhook.secret_encrypted, key)]
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret_encrypted and expires and expires > now:
        secrets.append(signing.decrypt(webhook.previous_secret_encrypted, key))
    return secrets


def deliver(session: Session, delivery_id: int, config: WebhookSettings) -> Outcome | None:
    """Claim, send and record one delivery; None if another worker has it or it is not
    due. Commits (twice: the claim, then the outcome)."""
    timeout = config.timeout_seconds
    if not claim(session, delivery_id, utcnow(), timeout):
        session.rollback()
        return None
    session.commit()
    delivery = session.get(WebhookDelivery, delivery_id)
    webhook = session.get(Webhook, delivery.webhook_id)
    if not webhook.is_active:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(sending_until=None)
        )
        session.commit()
        return None
    secrets = live_secrets(webhook, config.secret_key, utcnow())
    url, msg_id, message = webhook.url, delivery.msg_id, delivery.body
    session.commit()  # no transaction stays open during the request
    outcome = send(url, msg_id, message, secrets, timeout, config.allowed_networks)
    record(session, delivery_id, outcome, utcnow(), config)
    session.commit()
    return outcome


def send(
    url: str, msg_id: str, body: str, secrets: list[str], timeout: float, allowed: list[str]
) -> Outcome:
    started = time.monotonic()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(secrets, msg_id, timestamp, body),
    }
    try:
        response = post(url, body.encode(), headers, timeout, allowed)
    except targets.RefusedTarget as error:
        return Outcome(None, f"refused: {error}"[:ERROR_LENGTH], _elapsed_ms(started))
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
        return Outcome(
            None, f"{type(error).__name__}: {error}"[:ERROR_LENGTH], _elapsed_ms(started)
        )
    status = response.status
    error = None if 200 <= status < 300 else f"HTTP {status}"
    if 300 <= status < 400:
        error = f"HTTP {status}: redirect not followed ({response.headers.get('location', '')})"
    retry_after = _retry_after(response.headers.get("retry-after")) if status == 429 else None
    return Outcome(status, error and error[:ERROR_LENGTH], _elapsed_ms(started), retry_after)


def post(url: str, body: bytes, headers: dict, timeout: float, allowed: list[str]):
    """POST to ``url`` connecting to the address :func:`targets.resolve_checked` approved,
    with the Host header and TLS SNI/certificate check set to the URL's host name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = targets.resolve_checked(host, port, allowed)
    default_port = port == (443 if https else 80)
    host_header = f"[{host}]" if ":" in host else host
    headers = {**headers, "host": host_header if default_port else f"{host_header}:{port}"}
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = Deadline(timeout)
    limits = urllib3.Timeout(total=timeout)  # bounds each step; Deadline bounds the whole
    if https:
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            timeout=limits,
            deadline=deadline,
        )
        pool.ConnectionCls = _HTTPSConnection
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=limits, deadline=deadline)
        pool.ConnectionCls = _HTTPConnection
    try:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        response.read(65536)  # a receiver may not hold the worker with an endless body
        response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        # urllib3's own timeouts (bounded by the time left) may fire a moment before
        # the deadline does: the same failure, said the same way
        if deadline.expired or isinstance(error, urllib3.exceptions.TimeoutError):
            raise deadline.error() from None
        raise
    finally:
        deadline.stop()  # before the socket is closed: never shut a reused descriptor
        pool.close()
    if deadline.expired:  # the answer ended because the deadline cut it
        raise deadline.error()
    return response


class Deadline:
    """The total time of one attempt (connect, send, headers, body): at its end the
    connection's socket is shut down, which ends any read or write blocked on it.

    urllib3's ``Timeout(total=...)`` does not do this: it bounds the connect and each
    socket read, so a receiver that sends a byte (or a header line) a second is never
    cut. A timer thread per attempt is the cheapest way to cut a blocked read; it only
    calls ``shutdown`` (on the plain socket type, so TLS state is left alone), and
    :meth:`stop` is called before the socket is closed, under the same lock."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._stopped = False
        self._connections = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, connection) -> None:
        with self._lock:
            if self.expired:
                raise self.error()
            self._connections.append(connection)

    def error(self) -> TimeoutError:
        return TimeoutError(f"no complete answer within {self.seconds:g} s")

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.expired = True
            for connection in self._connections:
                sock = getattr(connection, "sock", None)  # the TLS socket once wrapped
                if sock is not None:
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _DeadlineConnection:
    """A urllib3 connection that puts itself under the attempt's :class:`Deadline`
    before connecting (its ``sock`` is the plain socket during the TLS handshake, the
    TLS socket after)."""

    def __init__(self, *args, deadline: Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def connect(self):
        self.deadline.watch(self)
        super().connect()


class _HTTPConnection(_DeadlineConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, urllib3.connection.HTTPSConnection):
    pass


def record(
    session: Session, delivery_id: int, outcome: Outcome, now: datetime, config: WebhookSettings
) -> None:
    delivery = session.execute(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    ).scalar_one()
    webhook = session.execute(
        select(Webhook).where(Webhook.id == delivery.webhook_id).with_for_update()
    ).scalar_one()
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            attempted_at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.sending_until = None
    if outcome.succeeded:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.next_attempt_at = None
        webhook.failing_since = None
        return
    if outcome.status_code == 410:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        disable(webhook, "The receiver answered 410 Gone.")
        return
    _schedule_retry(delivery, outcome, now, config.retry_schedule)
    webhook.failing_since = webhook.failing_since or now
    failing_for = (now - webhook.failing_since).total_seconds()
    if failing_for >= config.disable_after_seconds:
        disable(webhook, f"Every delivery failed for {int(failing_for)} s; last: {outcome.error}")


def disable(webhook: Webhook, reason: str) -> None:
    webhook.is_active = False
    webhook.disabled_reason = reason[:ERROR_LENGTH]


def _schedule_retry(delivery, outcome: Outcome, now: datetime, schedule: list[float]) -> None:
    if delivery.attempts >= len(schedule):
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        return
    wait = max(schedule[delivery.attempts], outcome.retry_after or 0)
    delivery.next_attempt_at = now + timedelta(seconds=wait)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - utcnow()).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0), MAX_RETRY_AFTER_SECONDS)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
