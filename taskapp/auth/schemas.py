import marshmallow as ma

from taskapp.auth.personal_tokens import SCOPES
from taskapp.models import Source, TokenAction
from taskapp.web.schemas import (
    BaseSchema,
    DateTime,
    Id,
    PageArgsSchema,
    Text,
    page_schema,
    parse_datetime,
)

TOKEN_EXAMPLE = {"example": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIyIn0.c2lnbmF0dXJl"}


class LoginSchema(BaseSchema):
    username = Text(
        required=True, validate=ma.validate.Length(max=150), metadata={"example": "intern"}
    )
    password = Text(
        required=True,
        validate=ma.validate.Length(max=1024),
        metadata={"example": "correct horse battery"},
    )


class RefreshSchema(BaseSchema):
    refresh = Text(required=True, validate=ma.validate.Length(max=4096), metadata=TOKEN_EXAMPLE)


class TokenPairSchema(ma.Schema):
    access = ma.fields.String(metadata=TOKEN_EXAMPLE)
    refresh = ma.fields.String(metadata=TOKEN_EXAMPLE)


class Instant(ma.fields.Field):
    """An ISO 8601 datetime with any offset (UTC if none), as the task filters read it."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"type": "string", "format": "date-time"}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid datetime.")
        try:
            return parse_datetime(value)
        except (ValueError, OverflowError):
            raise ma.ValidationError("Enter a valid date/time.") from None


class TokenSchema(ma.Schema):
    """A personal access token as listed: never the secret."""

    id = ma.fields.Integer()
    name = ma.fields.String()
    scopes = ma.fields.List(ma.fields.String(), attribute="scope_list")
    owner = ma.fields.Integer(attribute="user_id")
    created_at = DateTime()
    expires_at = DateTime(allow_none=True)
    last_used_at = DateTime(allow_none=True)


class NewTokenSchema(TokenSchema):
    token = ma.fields.String(metadata={"description": "The secret (tap_...), shown only here."})


class TokenCreateSchema(BaseSchema):
    name = Text(required=True, validate=ma.validate.Length(min=1, max=100))
    scopes = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(SCOPES)),
        required=True,
        validate=ma.validate.Length(min=1, max=len(SCOPES)),
        metadata={"uniqueItems": True},
    )
    expires_at = Instant(allow_none=True)

    @ma.validates("scopes")
    def _no_repeats(self, value, **_kwargs):
        if len(set(value)) != len(value):
            raise ma.ValidationError("A scope may be listed once.")


class TokenQueryArgsSchema(PageArgsSchema):
    user = Id(metadata={"description": "An ADMIN: that user's tokens; others: only their own id."})
    all = ma.fields.Boolean(
        load_default=False, metadata={"description": "An ADMIN: every user's tokens."}
    )


TokenPageSchema = page_schema(TokenSchema, "TokenPageSchema")


class TokenEventSchema(ma.Schema):
    id = ma.fields.Integer()
    action = ma.fields.Enum(TokenAction)
    token = ma.fields.Integer(attribute="token_id")
    token_name = ma.fields.String()
    owner = ma.fields.Integer(attribute="owner_id")
    actor = ma.fields.Integer(attribute="actor_id", allow_none=True)
    source = ma.fields.Enum(Source, by_value=True)
    created_at = DateTime()


class TokenEventQueryArgsSchema(PageArgsSchema):
    owner = Id(metadata={"description": "Only events of this user's tokens."})


TokenEventPageSchema = page_schema(TokenEventSchema, "TokenEventPageSchema")


class CalendarFeedSchema(ma.Schema):
    url = ma.fields.Url(
        required=True,
        metadata={
            "description": "Secret iCalendar feed URL (no bearer header needed); "
            "keep it private. Asking again rotates it: the old URL stops working.",
            "example": "https://tasks.example.com/api/auth/calendar-feed/"
            "Xq3v9mLw0cV2dT1yqS8pZkR4uN6bH5eJ7aGfD0iWlQo.ics",
        },
    )
