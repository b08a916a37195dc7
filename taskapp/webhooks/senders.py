"""A small pool of threads, one per process, that make the webhook HTTP requests.

Celery tasks (the tick, ``deliver_webhook``) only hand deliveries to it and return, so
no receiver, however slow, holds a worker process: a process keeps taking ticks while
its senders wait on receivers (each attempt ends within WEBHOOK_TIMEOUT_SECONDS). How
many requests one user may have in flight is bounded where deliveries are claimed
(``outbox.claim_due``), so one user's slow receivers can fill at most that many of the
threads and the others stay free for everyone else.

The pool is made lazily and per process id: a prefork child never inherits its parent's
threads. A process that dies with requests in flight leaves their leases to expire; the
next tick sends them again (at least once, same ``webhook-id``).
"""

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

SENDER_THREADS = 16
"""Requests in flight per worker process. With at most ``outbox.OWNER_IN_FLIGHT`` (4)
per user, four users whose every receiver hangs still leave room for the rest."""


class Senders:
    def __init__(self, size: int = SENDER_THREADS):
        self.size = size
        self._free = threading.BoundedSemaphore(size)
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="webhook-sender")

    def room(self) -> int:
        """Threads free right now (a hint: :meth:`submit` is what reserves one)."""
        return self._free._value

    def submit(self, work: Callable[[], None], then: Callable[[], None] | None = None) -> bool:
        """Run ``work`` on a free thread, then (its thread given back) ``then``; False
        (nothing done) when no thread is free."""
        if not self._free.acquire(blocking=False):
            return False
        try:
            self._executor.submit(self._run, work, then)
        except RuntimeError:  # the interpreter is shutting down
            self._free.release()
            return False
        return True

    def _run(self, work: Callable[[], None], then: Callable[[], None] | None) -> None:
        try:
            work()
        finally:
            self._free.release()
        if then is not None:
            then()


_pool: tuple[int, Senders] | None = None
_lock = threading.Lock()


def senders() -> Senders:
    """This process's pool (a new one after a fork)."""
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), Senders())
        return _pool[1]
