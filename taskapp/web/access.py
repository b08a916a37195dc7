"""The access line: one log line per answered request, written by the app (gunicorn's
own access log is off: it prints raw paths, and a calendar feed's path is its secret).

The line names the route by its URL rule (``/api/tasks/<int:task_id>/``), never the
path the client sent, so no secret in a path and no client-chosen text reaches the log,
and the metrics' ``route`` label stays bounded. The rule and the caller are noted in the
WSGI environ while Flask serves the request (:func:`note_route`, :func:`note_user`); the
line is written by :class:`taskapp.web.request_id.RequestIdMiddleware` once the answer
has started, with the request id still set.
"""

import logging
import re

from flask import Flask, request

from taskapp import metrics

log = logging.getLogger("taskapp.access")
ROUTE_KEY = "taskapp.route"
USER_KEY = "taskapp.user_id"
UNMATCHED = None
"""The route of a request that matched no rule (404, 405 and answers given before
routing): null in the log, ``"<unmatched>"`` as a metrics label."""


CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")


def register(app: Flask) -> None:
    app.teardown_request(note_route)


def note_route(_error=None) -> None:
    rule = request.url_rule
    request.environ[ROUTE_KEY] = route_name(rule.rule) if rule is not None else UNMATCHED


def route_name(rule: str) -> str:
    """The URL rule without its converters: ``/api/tasks/<task_id>/``."""
    return CONVERTER.sub(r"<\1>", rule)


def note_user(user_id: int) -> None:
    """Called by the web layer once the caller is authenticated."""
    request.environ[USER_KEY] = user_id


def access_fields(environ: dict, status: str | None, seconds: float) -> dict:
    """What the access line and the request metrics say about one answered request."""
    return {
        "method": environ.get("REQUEST_METHOD"),
        "route": environ.get(ROUTE_KEY),
        "status": int(status.split(" ", 1)[0]) if status else None,
        "duration_ms": round(seconds * 1000, 2),
        "user_id": environ.get(USER_KEY),
        "client": environ.get("REMOTE_ADDR"),
    }


LIMIT_KEY = "taskapp.rate_limit"
"""Which limit answered 429 (set by the handlers that answer it)."""
COUNTED = {
    ("POST", "/api/auth/login/", 401): metrics.LOGIN_FAILURES,
    ("POST", "/api/auth/logout/", 204): metrics.TOKENS_REVOKED,
    ("DELETE", "/api/auth/tokens/<token_id>/", 204): metrics.TOKENS_REVOKED,
}
"""Answers that are themselves the event a counter counts."""


def finished(environ: dict, status: str | None, seconds: float) -> None:
    fields = access_fields(environ, status, seconds)
    write_access_line(fields)
    method, route, code = fields["method"], fields["route"], fields["status"]
    metrics.observe_request(method, route, code, seconds)
    counter = COUNTED.get((method, route, code))
    if counter is not None:
        counter.inc()
    if code == 429:
        metrics.RATE_LIMITED.labels(environ.get(LIMIT_KEY, "other")).inc()


def note_limit(name: str) -> None:
    request.environ[LIMIT_KEY] = name


def write_access_line(fields: dict) -> None:
    status = fields["status"]
    level = logging.ERROR if status is None or status >= 500 else logging.INFO
    log.log(
        level,
        "%s %s %s %.1f ms",
        fields["method"],
        fields["route"] or "-",
        status,
        fields["duration_ms"],
        extra=fields,
    )
