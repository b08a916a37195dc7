"""The rate limit of personal access tokens: one bucket per token across every endpoint
(``PAT_RATE_LIMIT``, default 600 per minute, flask-limiter's moving window).

Counted with flask-limiter's own strategy and storage (Redis when ``REDIS_URL`` is set,
shared by every process; memory in the embedded mode), but called directly once the
token is known rather than through its route decorator, whose per-route bookkeeping cost
more than the count itself (see bench/pat_vs_jwt.py). If the storage fails, this sets
flask-limiter's "storage dead" flag, so its in-memory fallback counts instead and its
own periodic check switches back when the storage recovers, as for the login limit.
"""

import functools
import logging
import math
import time

import flask_smorest
from flask import current_app
from limits import RateLimitItem, parse

from taskapp.extensions import limiter
from taskapp.web.messages import THROTTLED

log = logging.getLogger(__name__)
SCOPE = "personal-token"


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> RateLimitItem:
    return parse(text)


def check_personal_token(token_id: int) -> None:
    """Count one call of the token; 429 with ``Retry-After`` once over the limit."""
    item = _parsed(current_app.config["PAT_RATE_LIMIT"])
    identifiers = (SCOPE, str(token_id))
    try:
        allowed = limiter.limiter.hit(item, *identifiers)
    except Exception:  # the storage's own errors (redis, timeouts...) vary by backend
        log.warning("rate limit storage unreachable - counting personal tokens in memory")
        limiter._storage_dead = True  # flask-limiter's flag: its fallback and recovery
        allowed = limiter.limiter.hit(item, *identifiers)
    if allowed:
        return
    reset_at = limiter.limiter.get_window_stats(item, *identifiers).reset_time
    wait = max(1, math.ceil(reset_at - time.time()))
    flask_smorest.abort(
        429, message=THROTTLED.format(wait=wait), headers={"Retry-After": str(wait)}
    )
