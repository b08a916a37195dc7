"""Request and response hygiene applied to every route: JSON or form-encoded bodies,
reads in autocommit, security headers, no server banner, CORS only for configured
origins, and X-Forwarded-* honoured only from as many proxies as TRUSTED_PROXY_COUNT
says, and only when the peer is one of FORWARDED_ALLOW_IPS (else a client could spoof
its address past the login limit)."""

import ipaddress

from flask import Flask, abort, request
from flask_cors import CORS
from sqlalchemy.exc import DBAPIError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from taskapp.extensions import db
from taskapp.web.api import FORM
from taskapp.web.failures import rollback_quietly
from taskapp.web.messages import UNSUPPORTED_MEDIA_TYPE

BODY_METHODS = {"POST", "PUT", "PATCH"}
READ_METHODS = {"GET", "HEAD"}
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"


class TrustedProxyFix:
    """ProxyFix for requests whose peer is one of FORWARDED_ALLOW_IPS; anybody else's
    X-Forwarded-* headers are ignored (a client that reaches the server directly cannot
    pose as the proxy)."""

    def __init__(self, wsgi_app, proxies: int, allowed: list[str]):
        self.plain = wsgi_app
        self.fixed = ProxyFix(
            wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
        self.everyone = "*" in allowed
        self.networks = [ipaddress.ip_network(a, strict=False) for a in allowed if a != "*"]

    def __call__(self, environ, start_response):
        handler = self.fixed if self._trusted(environ.get("REMOTE_ADDR")) else self.plain
        return handler(environ, start_response)

    def _trusted(self, peer: str | None) -> bool:
        if self.everyone:
            return True
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def register(app: Flask) -> None:
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, proxies, app.config["FORWARDED_ALLOW_IPS"])
    app.before_request(_require_json_body)
    app.before_request(_reads_in_autocommit)
    app.after_request(_security_headers)
    origins = [o.strip() for o in app.config["CORS_ORIGINS"].split(",") if o.strip()]
    if origins:
        CORS(
            app,
            resources={r"/api/*": {"origins": origins}},
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
            ],
            expose_headers=["ETag", "Location", "Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )


def _require_json_body() -> None:
    """415 for a body that is neither JSON nor form-encoded (the two DRF parses by
    default; the body's schema validates either); a request without a body is left to
    validation."""
    if request.method not in BODY_METHODS:
        return
    has_body = bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    )
    if not has_body and not request.mimetype:
        return
    if not request.is_json and request.mimetype != FORM:
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
