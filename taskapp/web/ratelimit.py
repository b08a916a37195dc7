"""The rate limit of personal access tokens: one bucket per token across every endpoint
(``PAT_RATE_LIMIT``, default 600 per minute), counted in a fixed window.

Counted with limits' fixed-window strategy on limits' own storages, built once per app
(``RATELIMIT_STORAGE_URI``: Redis when ``REDIS_URL`` is set, shared by every process;
process memory in the embedded mode), with the limit string parsed once per app. A hit
is one counter increment: in Redis one atomic INCR+EXPIRE script, one round trip; in
memory a dict increment under a lock. Why not flask-limiter's route decorator or its
moving window: the decorator's per-route bookkeeping cost more than the count, a moving
window keeps one timestamp per call (in Redis a list trimmed on every hit), and limits'
memory storage starts a timer thread on most hits (see :class:`QuietMemoryStorage`).

If the storage fails, the token is counted in process memory for
``PRIMARY_RETRY_SECONDS`` (logged), then the storage is tried again: a Redis outage
never turns into 500s nor into unlimited tokens.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass, field

import flask_smorest
from flask import current_app
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from taskapp.web.access import note_limit
from taskapp.web.messages import THROTTLED

log = logging.getLogger(__name__)
SCOPE = "personal-token"
EXTENSION_KEY = "taskapp.personal_token_limit"
PRIMARY_RETRY_SECONDS = 30.0
"""While the storage is unreachable, how long to count in memory before trying it again
(a hung Redis costs one request its socket timeout this often, not every request)."""
SWEEP_SECONDS = 60.0


class QuietMemoryStorage(MemoryStorage):
    """limits' memory storage without its per-hit timer thread.

    ``MemoryStorage.incr`` starts a ``threading.Timer`` whenever the previous one has
    finished (it lives 10 ms), i.e. a new thread every few requests, only to drop expired
    counters. Its ``get``, which ``incr`` calls first, already drops an expired counter
    when it is read, so counting stays exact without the timer; what the timer bounds is
    memory for tokens no longer used. Here that sweep runs inline, at most once every
    ``SWEEP_SECONDS``. (Overrides a private hook of the pinned ``limits`` version;
    ``tests/auth/test_personal_tokens.py`` covers counting and window expiry through it.)
    """

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        self._sweep_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + SWEEP_SECONDS
            self._MemoryStorage__expire_events()
        finally:
            self._sweep_lock.release()


def _storage(uri: str, options: dict) -> Storage:
    if uri.startswith("memory://"):
        return QuietMemoryStorage()
    return storage_from_string(uri, **options)


@dataclass
class TokenLimit:
    """One app's per-token limit: the parsed item, the configured storage's counter, and
    the memory counter used while that storage is unreachable."""

    item: RateLimitItem
    primary: FixedWindowRateLimiter
    fallback: FixedWindowRateLimiter = field(
        default_factory=lambda: FixedWindowRateLimiter(QuietMemoryStorage())
    )
    primary_down_until: float = 0.0

    @classmethod
    def for_app(cls, app) -> "TokenLimit":
        storage = _storage(
            app.config["RATELIMIT_STORAGE_URI"], app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}
        )
        return cls(parse(app.config["PAT_RATE_LIMIT"]), FixedWindowRateLimiter(storage))

    def counter(self) -> FixedWindowRateLimiter:
        if self.primary_down_until and time.monotonic() < self.primary_down_until:
            return self.fallback
        return self.primary

    def hit(self, *identifiers: str) -> tuple[bool, FixedWindowRateLimiter]:
        counter = self.counter()
        try:
            return counter.hit(self.item, *identifiers), counter
        except Exception:  # the storage's own errors (redis, timeouts...) vary by backend
            if counter is self.fallback:
                raise
            log.warning("rate limit storage unreachable - counting personal tokens in memory")
            self.primary_down_until = time.monotonic() + PRIMARY_RETRY_SECONDS
            return self.fallback.hit(self.item, *identifiers), self.fallback


def token_limit(app) -> TokenLimit:
    limit = app.extensions.get(EXTENSION_KEY)
    if limit is None:
        limit = app.extensions.setdefault(EXTENSION_KEY, TokenLimit.for_app(app))
    return limit


def _reset_at(limit: TokenLimit, counter: FixedWindowRateLimiter, identifiers) -> float:
    """When the token's window ends; a whole window from now if the storage just failed."""
    try:
        return counter.get_window_stats(limit.item, *identifiers).reset_time
    except Exception:  # as in TokenLimit.hit
        return time.time() + limit.item.get_expiry()


def check_personal_token(token_id: int) -> None:
    """Count one call of the token; 429 with ``Retry-After`` once over the limit."""
    limit = token_limit(current_app)
    identifiers = (SCOPE, str(token_id))
    allowed, counter = limit.hit(*identifiers)
    if allowed:
        return
    wait = max(1, math.ceil(_reset_at(limit, counter, identifiers) - time.time()))
    note_limit("personal_token")
    flask_smorest.abort(
        429, message=THROTTLED.format(wait=wait), headers={"Retry-After": str(wait)}
    )
