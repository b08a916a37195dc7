"""The access tokens this process has verified, remembered by the ``Authorization`` header
that carried them, so that a client sending the same token again is not decoded again.

flask-jwt-extended decodes a token three times a request (unverified for its key loader,
its header, then verified) and checks it: about 0.27 ms of worker CPU each time the same
token comes back (bench/README.md, "Issue 19, seventh round"). A header is remembered
only once ``verify_jwt_in_request`` accepted it, with the claims it verified. The same
bytes under the same key and settings verify to the same claims, except for time: a
remembered token at or past its ``exp`` (less JWT_DECODE_LEEWAY, as PyJWT counts it) is
not answered from here, and goes through flask-jwt-extended again, which refuses it.
Whatever can change while a token is unexpired (revocation, the session, the user's
activation, role and token version) is the token check's one query, which every request
runs either way.

One memo per app (a test's apps may have different keys), bounded (the least recently
used header is forgotten first), shared by the threads of a worker; a process that
restarts starts empty.
"""

import re
import threading
import time
from collections import OrderedDict
from datetime import timedelta

from flask import Flask

MEMO_KEY = "taskapp.verified_tokens"
SIZE = 4096
"""Headers remembered per process: a few thousand callers active within a token's
lifetime, at under a kilobyte each (only a plain header is remembered, see below)."""
PLAIN_HEADER = re.compile(r"Bearer [A-Za-z0-9_=.-]{1,2048}")
"""The only header form remembered: ``Bearer`` and one token. flask-jwt-extended also
accepts a token among other comma-separated values (and servers join repeated headers
with commas): such a header is verified every time, never stored, so that no caller can
fill the memo with one token padded 4,096 ways."""


class VerifiedTokens:
    def __init__(self, size: int, leeway_seconds: float):
        self.size = size
        self.leeway = leeway_seconds
        self._claims: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._claims)

    def claims(self, header: str) -> dict | None:
        """The claims verified for this exact header, if they have not expired (``exp``
        compared as PyJWT compares it: as an integer); an expired header is forgotten."""
        with self._lock:
            claims = self._claims.get(header)
            if claims is None:
                return None
            if int(claims["exp"]) <= time.time() - self.leeway:
                del self._claims[header]
                return None
            self._claims.move_to_end(header)
            return claims

    def remember(self, header: str, claims: dict) -> None:
        if self.size == 0 or PLAIN_HEADER.fullmatch(header) is None:
            return
        with self._lock:
            self._claims[header] = claims
            if len(self._claims) > self.size:
                self._claims.popitem(last=False)

    def forget(self, header: str) -> None:
        """Drop a header whose token the token check refused (revoked, user changed)."""
        with self._lock:
            self._claims.pop(header, None)


def install(app: Flask) -> None:
    """Give ``app`` its memo (after ``JWTManager.init_app``, which sets the JWT defaults).
    The settings are read once, here: they are fixed when the app is created."""
    config = app.config
    leeway = config.get("JWT_DECODE_LEEWAY", 0)
    if isinstance(leeway, timedelta):
        leeway = leeway.total_seconds()
    app.extensions[MEMO_KEY] = VerifiedTokens(SIZE if _bearer_headers_only(config) else 0, leeway)


def _bearer_headers_only(config) -> bool:
    """What the memo assumes (taskapp's settings): tokens only from ``Authorization:
    Bearer``. An app configured otherwise gets a memo that remembers nothing."""
    location = config.get("JWT_TOKEN_LOCATION")
    locations = (location,) if isinstance(location, str) else tuple(location or ())
    return (
        locations == ("headers",)
        and config.get("JWT_HEADER_NAME") == "Authorization"
        and config.get("JWT_HEADER_TYPE") == "Bearer"
    )


def of(app: Flask) -> VerifiedTokens:
    return app.extensions[MEMO_KEY]
