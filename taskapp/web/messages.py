"""Every message the API answers with, in one table (DRF's and SimpleJWT's words where
the original system had them)."""

DETAILS = {
    400: "Bad request.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    412: "Precondition failed: the resource has changed since it was read.",
    413: "Request body too large (the limit is 1 MiB).",
    500: "A server error occurred.",
    503: "Service temporarily unavailable; try again shortly.",
}
"""The ``detail`` of an error answer that carries no more specific message."""

NO_CREDENTIALS = DETAILS[401]
PERMISSION_DENIED = DETAILS[403]
INVALID_TOKEN = "Given token not valid for any token type"
INVALID_REFRESH = "Token is invalid or expired"
MALFORMED_HEADER = "Authorization header must contain two space-delimited values: Bearer <token>"
TOKEN_NOT_VALID = "token_not_valid"
"""SimpleJWT's ``code`` on every answer about a bad or dead token."""
BAD_AUTHORIZATION_HEADER = "bad_authorization_header"
BAD_CREDENTIALS = "No active account found with the given credentials"
INVALID_PAGE = "Invalid page."
INVALID_CURSOR = "Invalid cursor"
REPEATED_ORDERING_FIELD = "A field may appear only once in ordering when paging by cursor."
TASK_CHANGED_MEANWHILE = "The task was changed by another request at the same moment; retry."
THROTTLED = "Request was throttled. Expected available in {wait} seconds."
METHOD_NOT_ALLOWED = 'Method "{method}" not allowed.'
UNSUPPORTED_MEDIA_TYPE = 'Unsupported media type "{mimetype}" in request.'
JSON_PARSE_ERROR = "JSON parse error - {error}"
FORM_PARSE_ERROR = (
    "Form parse error - a field name or value is not valid UTF-8 once percent-decoded."
)
QUERY_PARSE_ERROR = (
    "Query string parse error - a parameter name or value is not valid UTF-8 once percent-decoded."
)
IDEMPOTENCY_KEY_LENGTH = "Idempotency-Key must be 1 to 255 characters."
IDEMPOTENCY_KEY_REUSED = (
    "This Idempotency-Key was already used with a different request; use a new key."
)
IDEMPOTENCY_IN_FLIGHT = (
    "A request with this Idempotency-Key is still being processed; retry in a moment."
)
IDEMPOTENCY_LOST_CLAIM = (
    "This request took too long and another request with its Idempotency-Key took over; "
    "nothing was written."
)
