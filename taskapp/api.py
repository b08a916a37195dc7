"""The project's flask-smorest Api and Blueprint: DRF-shaped errors, 400 for bad input,
and an auth decorator that both enforces and documents authentication."""

import http

import flask_smorest
import marshmallow as ma
from flask import request
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from taskapp.auth.roles import roles_required

NON_FIELD_ERRORS = "non_field_errors"
MAX_ID = 2**31 - 1
ID_IN_PATH = f"int(min=1, max={MAX_ID})"
"""Converter for ids in URLs: out-of-range ids are 404 before they reach the database
(PostgreSQL's integer is 32-bit; SQLite cannot bind integers above 64 bits)."""
UNAUTHENTICATED_HEADERS = {"WWW-Authenticate": 'Bearer realm="api"'}
DEFAULT_DETAILS = {
    400: "Bad request.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    412: "Precondition failed: the resource has changed since it was read.",
    413: "Request body too large (the limit is 1 MiB).",
    500: "A server error occurred.",
    503: "Service temporarily unavailable; try again shortly.",
}


class ErrorSchema(ma.Schema):
    """Every error that is not a validation error: ``{"detail": "..."}``."""

    detail = ma.fields.String(required=True)


BAD_REQUEST_COMPONENT = {
    "type": "object",
    "description": (
        "Validation failure: each field or query parameter mapped to its messages "
        '(errors not tied to a field under "non_field_errors"); a request that cannot '
        'be parsed at all answers {"detail": "..."}.'
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


def flatten_messages(messages) -> dict:
    """Turn webargs' ``{location: {field: [msg]}}`` into DRF's ``{field: [msg]}``."""
    flat: dict = {}
    locations = messages.values() if isinstance(messages, dict) else [messages]
    for per_location in locations:
        if isinstance(per_location, dict):
            for field, errors in per_location.items():
                key = NON_FIELD_ERRORS if field == "_schema" else field
                flat.setdefault(key, []).extend(errors if isinstance(errors, list) else [errors])
        else:
            flat.setdefault(NON_FIELD_ERRORS, []).extend(per_location)
    return flat


def field_error(field: str, message: str):
    """Abort with a 400 in DRF's shape for one field, as a schema validation would."""
    flask_smorest.abort(400, messages={"json": {field: [message]}})


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        flask_smorest.abort(400, message=f"JSON parse error - {error}")


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        if error.code == 401:
            headers.update(UNAUTHENTICATED_HEADERS)
        if "messages" in data:
            return flatten_messages(data["messages"]), error.code, headers
        detail = data.get("message") or _description(error)
        return {"detail": detail}, error.code, headers

    def _register_responses(self):
        """Document every error answer with the contract's shapes."""
        self.spec.components.schema("Error", schema=ErrorSchema)
        self.spec.components.schema("BadRequest", component=BAD_REQUEST_COMPONENT)
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status == 400:
                response["content"] = _json_content("BadRequest")
            elif status >= 400:
                response["content"] = _json_content("Error")
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Error", "content": _json_content("Error")}
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


def _json_content(schema_name: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}


def _description(error: HTTPException) -> str:
    if error.code == 405:
        return f'Method "{request.method}" not allowed.'
    if error.code in DEFAULT_DETAILS and error.description == type(error).description:
        return DEFAULT_DETAILS[error.code]
    return error.description or http.HTTPStatus(error.code).phrase


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def auth_required(self, *roles: str):
        """Require a bearer access token (and one of ``roles``); document 401/403."""

        def decorator(view):
            wrapped = roles_required(*roles)(view)
            wrapped = self.doc(security=[{"bearerAuth": []}])(wrapped)
            wrapped = self.alt_response(401, schema="Error", description="Not authenticated")(
                wrapped
            )
            if roles:
                wrapped = self.alt_response(403, schema="Error", description="Forbidden")(wrapped)
            return wrapped

        return decorator
