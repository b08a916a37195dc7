"""The event stream's engine: one hub per process, any number of streams.

The hub is the only reader of the log in its process: one thread (a greenlet under
gevent) reads every new entry in commit order (log.py) once, renders its webhook message
once (outbox.entry_messages: the same bytes a webhook receives) and keeps the recent
events in memory. Each stream takes from there the events its user hears of
(visibility.hearing), so a thousand streams cost one query per wake-up, not a thousand.

The database is the source of truth; nothing depends on the process that made the
change: the hub reads the log every ``poll_seconds``, and sooner when woken (a commit in
this process, or a message on Redis from any API process, see notify.py). A stream that
resumes from further back than the memory holds reads its own catch-up from the
database, then joins the hub.

Every ``check_seconds`` the hub checks the credentials of all its streams at once
(credentials.ended); a stream whose credential ended stops within that time.
"""

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from taskapp.events import credentials as creds
from taskapp.events import log, tickets
from taskapp.events.credentials import Credential
from taskapp.events.log import Position
from taskapp.visibility import HEARS, LOSES, hearing
from taskapp.webhooks import outbox

logger = logging.getLogger(__name__)
READ_BATCH = 500
BUFFER_SIZE = 20_000
REMOVED = "task.removed"
RESET = "reset"
TICKET_PURGE_SECONDS = 60

OpenSession = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True, slots=True)
class Event:
    """One entry as streams send it: framed once (id, event, data) for every stream."""

    position: Position
    message: str
    """The webhook message (``data``)."""
    removed: str
    """The ``task.removed`` message, for the user the task was taken from."""
    frame: str
    removed_frame: str
    assignee_id: int | None
    previous_assignee_id: int | None


def build_events(session: Session, entries: list, render_task, sign) -> list[Event]:
    """Frame the entries' webhook messages, and their ``task.removed`` variants, with
    ``sign(position)`` as the event id."""
    messages = outbox.entry_messages(session, entries, render_task)
    events = []
    for entry in entries:
        if entry.id not in messages:
            continue
        name, message = messages[entry.id]
        position = log.position_of(entry)
        event_id = sign(position)
        removed = outbox.body(
            REMOVED,
            entry.created_at,
            {
                "task": {"id": entry.task_id},
                "changes": {},
                "actor": entry.actor_id,
                "source": entry.source,
            },
        )
        events.append(
            Event(
                position,
                message,
                removed,
                sse(name, message, event_id),
                sse(REMOVED, removed, event_id),
                entry.assignee_id,
                entry.previous_assignee_id,
            )
        )
    return events


@dataclass(eq=False)
class Subscription:
    credential: Credential
    ended: bool = False
    opened: float = field(default_factory=time.monotonic)

    @property
    def user(self):
        return _User(self.credential.user_id, self.credential.role)


@dataclass(frozen=True, slots=True)
class _User:
    id: int
    role: object


class Hub:
    def __init__(
        self,
        open_session: OpenSession,
        render_task,
        sign: Callable[[Position], str],
        *,
        poll_seconds: float,
        check_seconds: float,
        buffer_size: int = BUFFER_SIZE,
    ):
        self.open_session = open_session
        self.render_task = render_task
        self.sign = sign
        self.poll_seconds = poll_seconds
        self.check_seconds = check_seconds
        self.buffer_size = buffer_size
        self.lock = threading.Lock()
        self._changed = threading.Event()
        """Set (and replaced) whenever the head moves or a stream is ended: every waiting
        stream wakes at once. Under gevent this is gevent's Event, whose set() wakes a
        thousand waiters in C; a Condition's notify_all released them one Python lock at
        a time (17% of the stream service's CPU at 2,000 events a second)."""
        self.buffer: list[Event] = []
        self.subscriptions: set[Subscription] = set()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        with open_session() as session:
            self.head = log.head(session)
        self.floor = self.head
        """The buffer holds every event in (floor, head]."""

    # --- the reader --------------------------------------------------------------------

    def start(self) -> "Hub":
        self._thread = threading.Thread(target=self._run, name="events-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        last_check = last_purge = time.monotonic()
        while not self._stop:
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                self._read()
                now = time.monotonic()
                if now - last_check >= self.check_seconds:
                    last_check = now
                    self._check_credentials()
                if now - last_purge >= TICKET_PURGE_SECONDS:
                    last_purge = now
                    self._purge_tickets()
            except Exception:  # the database is away: keep the streams, try again
                logger.exception("event hub: reading the log failed")
                time.sleep(1)

    def _read(self) -> None:
        with self.open_session() as session:
            while True:
                page = log.read(session, log.EVERYONE, self.head, READ_BATCH)
                events = build_events(session, page.entries, self.render_task, self.sign)
                with self.lock:
                    self.buffer.extend(events)
                    self.head = page.end
                    self._trim()
                self._announce()
                if len(page.entries) < READ_BATCH:
                    return

    def _trim(self) -> None:
        extra = len(self.buffer) - self.buffer_size
        if extra > 0:
            self.floor = self.buffer[extra - 1].position
            del self.buffer[:extra]

    def _check_credentials(self) -> None:
        with self.lock:
            open_streams = list(self.subscriptions)
        if not open_streams:
            return
        with self.open_session() as session:
            dead = creds.ended(session, [s.credential for s in open_streams], datetime.now(UTC))
        if dead:
            for subscription in open_streams:
                if subscription.credential in dead:
                    subscription.ended = True
            self._announce()

    def _announce(self) -> None:
        with self.lock:
            changed, self._changed = self._changed, threading.Event()
        changed.set()

    def _purge_tickets(self) -> None:
        with self.open_session() as session:
            tickets.purge(session, datetime.now(UTC))
            session.commit()

    # --- the streams -------------------------------------------------------------------

    def after(self, position: Position) -> tuple[list[Event], Position] | None:
        """The buffered events after ``position`` and the head they reach; None when
        ``position`` is older than the buffer (read the database instead)."""
        with self.lock:
            if position < self.floor:
                return None
            start = bisect.bisect_right(self.buffer, position, key=lambda e: e.position)
            return self.buffer[start:], self.head

    def catch_up(self, subscription: Subscription, position: Position):
        """Events the subscriber hears of after ``position``, from the database."""
        with self.open_session() as session:
            page = log.read(session, subscription.user, position, READ_BATCH)
            return build_events(session, page.entries, self.render_task, self.sign), page.end

    def subscribe(self, subscription: Subscription) -> None:
        with self.lock:
            self.subscriptions.add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        with self.lock:
            self.subscriptions.discard(subscription)

    def wait(self, subscription: Subscription, position: Position, timeout: float) -> None:
        """Until the head moves past ``position``, the stream is ended, or ``timeout``."""
        with self.lock:
            changed = self._changed
            if self.head > position or subscription.ended:
                return
        changed.wait(timeout)


def sse(event: str, data: str, event_id: str | None = None) -> str:
    """One Server-Sent Event. ``data`` is compact JSON: one line, so one ``data:``
    field (JSON escapes every newline inside strings)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def frames_for(subscription: Subscription, events: list[Event]) -> Iterator[str]:
    credential = subscription.credential
    for event in events:
        heard = hearing(credential.role, credential.user_id, event)
        if heard == HEARS:
            yield event.frame
        elif heard == LOSES:
            yield event.removed_frame


def run(
    hub: Hub,
    subscription: Subscription,
    start: Position | None,
    *,
    reset: bool,
    sign: Callable[[Position], str],
    heartbeat_seconds: float,
    retry_ms: int = 3000,
) -> Iterator[str]:
    """The text of one stream: ``reset`` first if asked, then every event the user
    hears of after ``start`` (the hub's head when None), a comment line whenever
    ``heartbeat_seconds`` pass in silence; it ends when the credential does."""
    hub.subscribe(subscription)
    try:
        position = hub.head if start is None else start
        yield f"retry: {retry_ms}\n: stream open\n\n"
        if reset:
            yield sse(RESET, '{"detail":"resync through GET /api/tasks/changes/"}', sign(position))
        last_write = time.monotonic()
        while not subscription.ended:
            buffered = hub.after(position)
            if buffered is None:
                events, position_after = hub.catch_up(subscription, position)
                chunk = list(frames_for(subscription, events))
            else:
                events, position_after = buffered
                chunk = list(frames_for(subscription, events))
            position = max(position, position_after)
            if chunk:
                yield "".join(chunk)
                last_write = time.monotonic()
                continue
            if buffered is None:
                continue  # still catching up
            silent = time.monotonic() - last_write
            if silent >= heartbeat_seconds:
                yield ": keep-alive\n\n"
                last_write = time.monotonic()
                continue
            hub.wait(subscription, position, heartbeat_seconds - silent)
    finally:
        hub.unsubscribe(subscription)
