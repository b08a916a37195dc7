"""Request bodies and query strings are read and parsed once, before anything else
looks at them.

A JSON body is parsed in a ``before_request`` hook that runs ahead of every other hook
and of the rate limiter: whatever the parser refuses (bad syntax, nesting deep enough to
exhaust the recursion limit, an integer literal past Python's 4,300-digit limit) is a
400 ``{"detail": "JSON parse error - ..."}`` there, and a body larger than
MAX_CONTENT_LENGTH is a 413 whether it came with Content-Length or chunked. The parsed
value is cached on the request, so the argument parser and the login limit's key
function read the same value and never parse again.

A form-encoded body or a query string whose percent-decoded bytes are not UTF-8
(``title=%FF%FE``) is a 400 there too: werkzeug would keep such a value as its literal
text, and the client would find something stored that it never meant.
"""

import io
from urllib.parse import parse_qsl

from flask import Flask, abort, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

from taskapp.web.api import FORM
from taskapp.web.messages import FORM_PARSE_ERROR, JSON_PARSE_ERROR, QUERY_PARSE_ERROR

BODY_METHODS = {"POST", "PUT", "PATCH"}


class JSONBodyError(ValueError):
    """Raised for any JSON the parser refuses, so Flask's ``get_json`` handles it."""


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with a ``loads`` that fails only with ``ValueError``."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise JSONBodyError("nesting too deep") from None
        except ValueError as error:  # JSONDecodeError, int digit limit, bad UTF-8
            raise JSONBodyError(str(error)) from None


def register(app: Flask) -> None:
    app.json = SafeJSONProvider(app)
    # First of all hooks: the limiter's key function reads the body.
    app.before_request_funcs.setdefault(None, []).insert(0, parse_json_body)


def has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def parse_json_body() -> None:
    """Read the body (413 past the limit, chunked or not) and parse it if it is JSON;
    refuse a query string or form body that does not decode."""
    if not decodes(request.query_string):
        abort(400, QUERY_PARSE_ERROR)
    if request.method not in BODY_METHODS or not has_body():
        return
    if request.content_length is None:
        _buffer_streamed_body()
    data = request.get_data(cache=True)  # 413 when Content-Length is past the limit
    if request.mimetype == FORM and not decodes(data):
        abort(400, FORM_PARSE_ERROR)
    if not request.is_json or not data:
        return
    try:
        request.get_json()
    except BadRequest as error:
        cause = error.__context__ or error
        abort(400, JSON_PARSE_ERROR.format(error=cause))


def decodes(encoded: bytes) -> bool:
    """True if every name and value of ``application/x-www-form-urlencoded`` data (a
    form body or a query string) is UTF-8, raw or percent-encoded."""
    try:
        parse_qsl(encoded.decode(), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def _buffer_streamed_body() -> None:
    """A chunked body has no Content-Length to refuse up front, and werkzeug silently
    cuts such a stream at MAX_CONTENT_LENGTH (the handler would see a truncated body).
    Read one byte past the limit from the server's stream: 413 if it is there, else
    hand the body on as if it had come with a Content-Length."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    environ = request.environ
    if not environ.get("wsgi.input_terminated"):
        return  # the server cannot delimit the stream; werkzeug reads nothing
    data = _read_up_to(environ["wsgi.input"], limit + 1)
    if len(data) > limit:
        abort(413)
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))


def _read_up_to(stream, size: int) -> bytes:
    parts, remaining = [], size
    while remaining > 0:
        part = stream.read(min(remaining, 64 * 1024))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def cached_json():
    """The body parsed by :func:`parse_json_body` (None if there is none)."""
    return request.get_json(silent=True) if request.is_json else None
