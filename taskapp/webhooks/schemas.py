import marshmallow as ma

from taskapp.models import DeliveryStatus
from taskapp.web.schemas import BaseSchema, Boolean, DateTime, PageArgsSchema, Text, page_schema
from taskapp.webhooks.outbox import TASK_EVENTS

URL_MAX = 2000
ASCII_URL = ma.validate.Regexp(
    r"^https?://[\x21-\x7e]+$",
    error="Enter the URL in ASCII: an internationalised host name in its xn-- form.",
)


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
    url = ma.fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=[ma.validate.Length(max=URL_MAX), ASCII_URL],
        metadata={
            "format": "uri",
            "pattern": ASCII_URL.regex.pattern,
            "description": (
                "http or https, in ASCII (an internationalised host name in its punycode "
                "form, xn--...); a literal internal address is refused (400)"
            ),
        },
    )
    events = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(TASK_EVENTS)),
        validate=ma.validate.Length(min=1),
        metadata={"description": "Defaults to every task event."},
    )
    description = Text(validate=ma.validate.Length(max=500))


class WebhookPatchSchema(WebhookWriteSchema):
    is_active = Boolean(
        metadata={"description": "true re-enables a disabled webhook (clears its reason)"}
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
