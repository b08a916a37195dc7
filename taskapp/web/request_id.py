"""``X-Request-ID``: every request gets one and every answer carries it.

A client's value is kept when it is 1-128 characters of ``[A-Za-z0-9._:-]`` (what a
proxy or a tracing header usually holds); anything else, or none, is replaced by a new
random one, so a client cannot write arbitrary text into the logs. The id is set around
the whole WSGI call (:mod:`taskapp.origin`), so the log lines and the activity-log
entries written while serving carry it; the header is added to every answer the app
gives, errors, 304s and redirects included, by wrapping ``start_response``.
"""

import re
import time
import uuid

from taskapp import origin

HEADER = "X-Request-ID"
ENVIRON_KEY = "taskapp.request_id"
VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def choose(offered: str | None) -> str:
    """The client's id when it is acceptable, else a new one."""
    if offered and VALID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """WSGI middleware: the outermost layer of the app (inside it run the proxy fix,
    Flask and everything it answers)."""

    def __init__(self, wsgi_app, on_finish=None):
        self.wsgi_app = wsgi_app
        self.on_finish = on_finish
        """Called with ``(environ, status, seconds)`` once the answer is sent (its body
        closed, so a streamed body counts), the request id still set: the access line
        and the request metrics."""

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request_id = choose(environ.get("HTTP_X_REQUEST_ID"))
        environ[ENVIRON_KEY] = request_id
        answered = {}

        def start_with_id(status, headers, exc_info=None):
            answered["status"] = status
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        def finish():
            if self.on_finish is not None:
                self.on_finish(environ, answered.get("status"), time.perf_counter() - started)

        with origin.serving(request_id):
            try:
                body = self.wsgi_app(environ, start_with_id)
            except BaseException:
                finish()
                raise
        return _Answer(body, request_id, finish)


class _Answer:
    """The app's answer body, iterated with the request id set; closing it (every WSGI
    server does, last) closes the app's body, then calls ``finish``."""

    def __init__(self, body, request_id: str, finish):
        self.body = body
        self.chunks = iter(body)
        self.request_id = request_id
        self.finish = finish

    def __iter__(self):
        return self

    def __next__(self):
        with origin.serving(self.request_id):
            return next(self.chunks)

    def close(self):
        with origin.serving(self.request_id):
            try:
                close = getattr(self.body, "close", None)
                if close is not None:
                    close()
            finally:
                self.finish()
