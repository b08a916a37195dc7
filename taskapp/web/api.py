"""The project's flask-smorest Api and Blueprint: DRF-shaped errors, 400 for bad input,
and helpers that both enforce and document a rule (authentication, If-Match)."""

import http

import flask_smorest
import marshmallow as ma
from flask import abort, request
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from taskapp.web import messages
from taskapp.web.permissions import roles_required

NON_FIELD_ERRORS = "non_field_errors"
MAX_ID = 2**31 - 1
ID_IN_PATH = f"int(min=1, max={MAX_ID})"
"""Converter for ids in URLs: out-of-range ids are 404 before they reach the database
(PostgreSQL's integer is 32-bit; SQLite cannot bind integers above 64 bits)."""
UNAUTHENTICATED_HEADERS = {"WWW-Authenticate": 'Bearer realm="api"'}
ETAG_HEADER = {
    "ETag": {"description": "Version of the task, for If-Match", "schema": {"type": "string"}}
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": "ETag from a previous answer; a stale one answers 412 and changes nothing.",
    "schema": {"type": "string"},
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


def flatten_messages(messages_by_location) -> dict:
    """Turn webargs' ``{location: {field: [msg]}}`` into DRF's ``{field: [msg]}``."""
    flat: dict = {}
    locations = (
        messages_by_location.values()
        if isinstance(messages_by_location, dict)
        else [messages_by_location]
    )
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


def check_if_match(etag: str) -> None:
    """Optional optimistic concurrency: a stale ``If-Match`` answers 412. Callers lock
    the row and make the write conditional on its version, so of two writers holding
    the same ETag exactly one wins."""
    if "If-Match" not in request.headers:
        return
    if request.if_match.star_tag or request.if_match.contains(etag.strip('"')):
        return
    abort(412, messages.DETAILS[412])


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req):
        """The body that ``web.bodies`` parsed (and refused if unparsable) already."""
        if req.is_json and req.get_data(cache=True):
            return req.get_json()
        return super()._raw_load_json(req)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        flask_smorest.abort(400, message=messages.JSON_PARSE_ERROR.format(error=error))


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
        return messages.METHOD_NOT_ALLOWED.format(method=request.method)
    if error.code in messages.DETAILS and error.description == type(error).description:
        return messages.DETAILS[error.code]
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

    def if_match(self):
        """Document the optional ``If-Match`` header and its 412; the view enforces it
        with :func:`check_if_match` once it holds the locked row."""

        def decorator(view):
            view = self.doc(parameters=[IF_MATCH])(view)
            return self.alt_response(412, schema="Error", description="If-Match is stale")(view)

        return decorator

    def not_found(self, description: str):
        """Document the 404 of a view that looks an object up."""
        return self.alt_response(404, schema="Error", description=description)


api = Api()
"""The app's one Api, bound by :func:`taskapp.create_app` (the web layer's extension
object; ``taskapp.extensions`` holds the rest and knows nothing of the web)."""
