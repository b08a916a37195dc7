"""Request and response hygiene applied to every route: JSON-only bodies, reads in
autocommit, security headers, no server banner, CORS only for configured origins, and
X-Forwarded-* honoured only from as many proxies as TRUSTED_PROXY_COUNT says (else a
client could spoof its address past the login limit)."""

from flask import Flask, abort, request
from flask_cors import CORS
from sqlalchemy.exc import DBAPIError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from taskapp.extensions import db
from taskapp.web.errors import rollback_quietly
from taskapp.web.messages import UNSUPPORTED_MEDIA_TYPE

BODY_METHODS = {"POST", "PUT", "PATCH"}
READ_METHODS = {"GET", "HEAD"}
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"


def register(app: Flask) -> None:
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
    app.before_request(_require_json_body)
    app.before_request(_reads_in_autocommit)
    app.after_request(_security_headers)
    origins = [o.strip() for o in app.config["CORS_ORIGINS"].split(",") if o.strip()]
    if origins:
        CORS(
            app,
            resources={r"/api/*": {"origins": origins}},
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match"],
            expose_headers=["ETag", "Location", "Retry-After"],
            max_age=600,
        )


def _require_json_body() -> None:
    """415 for a body that is not JSON; a request without a body is left to validation."""
    if request.method not in BODY_METHODS:
        return
    has_body = bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    )
    if not has_body and not request.mimetype:
        return
    if not request.is_json:
        abort(415, UNSUPPORTED_MEDIA_TYPE.format(mimetype=request.mimetype))


def _reads_in_autocommit() -> None:
    """GET and HEAD only read: their statements run in autocommit, which spares the
    BEGIN and the closing ROLLBACK, two of a list request's round trips. Each statement
    sees the data committed when it starts, as under READ COMMITTED anyway."""
    if request.method not in READ_METHODS or not request.path.startswith("/api/"):
        return
    try:
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    except DBAPIError:  # the database is down: the view answers that its own way
        rollback_quietly()


def _security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype == "application/json":
        response.headers["Content-Security-Policy"] = JSON_CSP
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.pop("Server", None)
    return response
