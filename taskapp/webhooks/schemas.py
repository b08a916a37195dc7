from urllib.parse import urlsplit

import marshmallow as ma

from taskapp.web.schemas import (
    BaseSchema,
    Boolean,
    DateTime,
    PageArgsSchema,
    PlainText,
    page_schema,
)
from taskapp.webhooks.models import DeliveryStatus
from taskapp.webhooks.outbox import TASK_EVENTS

URL_MAX = 2000
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[\x21-\x7e]+$"
"""What the spec states: http or https in any case, then printable ASCII."""
SCHEMES = {"http", "https"}
URL_MESSAGES = {
    "too_long": f"Ensure this field has no more than {URL_MAX} characters.",
    "space": (
        "The URL may not contain spaces or control characters; percent-encode them "
        "(a space is %20)."
    ),
    "scheme": "The scheme must be http or https (e.g. https://example.com/hook).",
    "ascii": (
        "Enter the URL in ASCII: an internationalised host name in its xn-- form, any "
        "other character percent-encoded."
    ),
    "port": "The port must be a number from 1 to 65535.",
    "no_host": "The URL needs a host name (e.g. https://example.com/hook).",
    "host": "The host name is not valid: letters, digits, '-' and '.', or an IP address.",
}
HOST_CHECK = ma.validate.URL(relative=False, schemes=SCHEMES, require_tld=False)
"""marshmallow's URL check, run last, once scheme, characters and port are known good:
what it still refuses is the host."""


class WebhookUrl(ma.fields.String):
    """A webhook's target URL, each refusal saying what is wrong. The scheme's case does
    not matter (RFC 3986); the URL is kept as given. Whether its address may be reached
    is checked by the service (``targets.check_literal``)."""

    default_error_messages = URL_MESSAGES

    def __init__(self, **kwargs):
        metadata = {
            "format": "uri",
            "pattern": URL_PATTERN,
            "maxLength": URL_MAX,
            "description": (
                "http or https, in ASCII (an internationalised host name in its punycode "
                "form, xn--...), port 1-65535; a literal internal address is refused (400)"
            ),
            "example": "https://hooks.example.com/taskapp",
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        url = super()._deserialize(value, attr, data, **kwargs)
        problem = _url_problem(url)
        if problem is not None:
            raise self.make_error(problem)
        return url


def _url_problem(url: str) -> str | None:
    """The key of the first thing wrong with ``url`` in URL_MESSAGES, or None."""
    if len(url) > URL_MAX:
        return "too_long"
    if any(char.isspace() or char < " " or char == "\x7f" for char in url):
        return "space"
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        return "host"
    if parts.scheme not in SCHEMES or not url[len(parts.scheme) :].startswith("://"):
        return "scheme"
    if not url.isascii():
        return "ascii"
    try:
        port = parts.port
    except ValueError:
        return "port"
    if port == 0:
        return "port"
    if not parts.hostname:
        return "no_host"
    try:
        HOST_CHECK(url)
    except ma.ValidationError:
        return "host"
    return None


class WebhookSchema(ma.Schema):
    id = ma.fields.Integer()
    url = ma.fields.String()
    events = ma.fields.List(ma.fields.String())
    description = ma.fields.String()
    is_active = ma.fields.Boolean()
    disabled_reason = ma.fields.String(allow_none=True)
    owner = ma.fields.Integer(attribute="owner_id")
    created_at = DateTime()


class WebhookWithSecretSchema(WebhookSchema):
    secret = ma.fields.String(
        metadata={"description": "whsec_ + base64 key; shown only on creation and rotation"}
    )


class WebhookWriteSchema(BaseSchema):
    url = WebhookUrl(required=True)
    events = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(TASK_EVENTS)),
        validate=ma.validate.Length(min=1),
        metadata={
            "description": "Defaults to every task event.",
            "example": ["task.created", "task.updated"],
        },
    )
    description = PlainText(
        validate=ma.validate.Length(max=500), metadata={"example": "Team chat notifier"}
    )


class WebhookPatchSchema(WebhookWriteSchema):
    is_active = Boolean(
        metadata={
            "description": "true re-enables a disabled webhook (clears its reason)",
            "example": True,
        }
    )


class DeliverySchema(ma.Schema):
    id = ma.fields.Integer()
    msg_id = ma.fields.String(metadata={"description": "The webhook-id header"})
    event = ma.fields.String()
    status = ma.fields.Enum(DeliveryStatus, by_value=True)
    attempts = ma.fields.Integer()
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    next_attempt_at = DateTime(allow_none=True)
    created_at = DateTime()


class ListArgsSchema(PageArgsSchema):
    class Meta:
        unknown = ma.EXCLUDE


WebhookPageSchema = page_schema(WebhookSchema, "WebhookPageSchema")
DeliveryPageSchema = page_schema(DeliverySchema, "DeliveryPageSchema")
