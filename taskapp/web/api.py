"""The project's flask-smorest Api and Blueprint: DRF-shaped errors, 400 for bad input,
and helpers that both enforce and document a rule (authentication, If-Match)."""

import http
import re

import flask_smorest
import marshmallow as ma
from flask import abort, request
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from taskapp.web import messages, replay
from taskapp.web.permissions import roles_required

NON_FIELD_ERRORS = "non_field_errors"
MAX_ID = 2**31 - 1
ID_IN_PATH = f"int(min=1, max={MAX_ID})"
"""Converter for ids in URLs: out-of-range ids are 404 before they reach the database
(PostgreSQL's integer is 32-bit; SQLite cannot bind integers above 64 bits)."""
UNAUTHENTICATED_HEADERS = {"WWW-Authenticate": 'Bearer realm="api"'}
FORM = "application/x-www-form-urlencoded"
"""Accepted wherever a JSON body is, as DRF's default parsers accept it."""
WWW_AUTHENTICATE_HEADER = {
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with",
        "schema": {"type": "string", "example": UNAUTHENTICATED_HEADERS["WWW-Authenticate"]},
    }
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "example": 60},
    }
}
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
    code = ma.fields.String(
        metadata={
            "description": "Machine-readable reason, on token errors (as SimpleJWT's).",
            "example": "token_not_valid",
            "optional": True,
        }
    )


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
                flat.setdefault(key, []).extend(_messages(errors))
        else:
            flat.setdefault(NON_FIELD_ERRORS, []).extend(per_location)
    return flat


def _messages(errors, prefix: str = "") -> list[str]:
    """A field's messages as a flat list of strings; those of a list's items or a
    nested object name where they apply (``"2: Must be one of: ..."``)."""
    if isinstance(errors, dict):
        return [
            message
            for where, nested in errors.items()
            for message in _messages(nested, f"{prefix}{where}: ")
        ]
    if isinstance(errors, list):
        return [message for item in errors for message in _messages(item, prefix)]
    return [f"{prefix}{errors}"]


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
    """Bodies are JSON or, as DRF accepts them, form-encoded: a form body is read into
    the same schema (see :func:`form_values`), so it gets the same validation."""

    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req, schema):
        if req.mimetype == FORM:
            return form_values(req.form, schema)
        return super().load_json(req, schema)

    def _raw_load_json(self, req):
        """The body that ``web.bodies`` parsed (and refused if unparsable) already."""
        if req.is_json and req.get_data(cache=True):
            return req.get_json()
        return super()._raw_load_json(req)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        flask_smorest.abort(400, message=messages.JSON_PARSE_ERROR.format(error=error))


def form_values(form, schema: ma.Schema) -> dict:
    """A form's text values as the JSON a client would have sent, read like DRF reads
    form data: the last value of a repeated key, a list for a list field, an empty value
    as null where the field allows null, and whole numbers as numbers (a form cannot
    carry types; the field still validates the value) and true/false words as booleans."""
    values = {}
    for key in form:
        field = schema.fields.get(key)
        if isinstance(field, ma.fields.List):
            values[key] = form.getlist(key)
            continue
        value = form.getlist(key)[-1]
        if field is not None and value == "" and field.allow_none:
            value = None
        elif isinstance(field, ma.fields.Integer) and re.fullmatch(r"-?[0-9]{1,12}", value):
            value = int(value)
        elif isinstance(field, ma.fields.Boolean) and value in field.truthy | field.falsy:
            value = value in field.truthy
        values[key] = value
    return values


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def _register_pagination_header(self):
        """taskapp pages in the body (DRF's envelope), never in a header: no
        PaginationMetadata component."""

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        if error.code == 401:
            headers.update(UNAUTHENTICATED_HEADERS)
        if "messages" in data:
            return flatten_messages(data["messages"]), error.code, headers
        body = {"detail": data.get("message") or _description(error)}
        if "code" in data:
            body["code"] = data["code"]
        return body, error.code, headers

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


ERROR_HEADERS = {401: WWW_AUTHENTICATE_HEADER, 429: RETRY_AFTER_HEADER}
"""Headers every answer with that status carries (see Api.handle_http_exception and the
throttling handler), declared on every operation that documents the status."""


def _complete_operation_doc(doc: dict, _doc_info, **_kwargs) -> dict:
    """What holds for every operation, documented in one place: 401 and 429 answers
    carry their headers. (Form-encoded bodies are accepted too, see Parser, but stated
    once in the document's description rather than as a second content type per body:
    with two content types of one schema, generated clients cannot tell which to send.)"""
    for status, response in doc.get("responses", {}).items():
        headers = ERROR_HEADERS.get(int(status)) if str(status).isdigit() else None
        if headers and isinstance(response, dict):
            response.setdefault("headers", {}).update(headers)
    return doc


def _json_content(schema_name: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}


def _description(error: HTTPException) -> str:
    if error.code == 405:
        return messages.METHOD_NOT_ALLOWED.format(method=request.method)
    if error.code in messages.DETAILS and error.description == type(error).description:
        return messages.DETAILS[error.code]
    return error.description or http.HTTPStatus(error.code).phrase


def operation_id(endpoint: str, method: str) -> str:
    """``TaskById`` + ``patch`` -> ``patch_task_by_id``: every operation's id, by one rule
    from its view's name (apispec refuses a duplicate)."""
    return f"{method}_{re.sub(r'(?<!^)(?=[A-Z])', '_', endpoint).lower()}"


def _scope_note(scope: str | None, personal_tokens: bool) -> str:
    if not personal_tokens:
        return "Personal access tokens cannot call this (403): log in for a JWT."
    if scope is None:
        return "Any valid JWT or personal access token, whatever its scopes."
    return f"Personal access tokens need the scope `{scope}`."


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(_complete_operation_doc)

    def register_views_in_doc(self, api, app, spec, *, name, parameters):
        for endpoint, doc_info in self._docs.items():
            for method, operation in doc_info.items():
                if method != "parameters":
                    manual = operation.setdefault("manual_doc", {})
                    manual.setdefault("operationId", operation_id(endpoint, method))
        return super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)

    def auth_required(self, *roles: str, scope: str | None = None, personal_tokens: bool = True):
        """Require a bearer token (a JWT, or a personal access token holding ``scope``;
        ``personal_tokens=False`` refuses those), and one of ``roles`` if given. Enforces
        it and documents it: the security requirement, ``x-required-scope``, a sentence
        in the description, and the 401/403/429 answers."""

        def decorator(view):
            wrapped = roles_required(*roles, scope=scope, personal_tokens=personal_tokens)(view)
            extensions = {"x-required-scope": scope} if scope else {}
            if not personal_tokens:
                extensions["x-personal-tokens"] = False
            wrapped = self.doc(
                security=[{"bearerAuth": []}],
                description=_scope_note(scope, personal_tokens),
                **extensions,
            )(wrapped)
            wrapped = self.alt_response(401, schema="Error", description="Not authenticated")(
                wrapped
            )
            wrapped = self.alt_response(
                403, schema="Error", description="Forbidden (role, or a token's scopes)"
            )(wrapped)
            return self.alt_response(
                429, schema="Error", description="A personal access token over its rate limit"
            )(wrapped)

        return decorator

    def idempotent(self):
        """Honour ``Idempotency-Key`` (see :mod:`taskapp.web.replay`) and document
        the header with its 409 and 422. Place it right under ``auth_required``."""

        def decorator(view):
            wrapped = replay.idempotent(view)
            wrapped = self.doc(parameters=[replay.HEADER_DOC])(wrapped)
            wrapped = self.alt_response(
                409, schema="Error", description="A request with this key is still running"
            )(wrapped)
            return self.alt_response(
                422, schema="Error", description="This key was used with a different request"
            )(wrapped)

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
