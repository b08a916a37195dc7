import marshmallow as ma

from taskapp.auth.models import TokenAction
from taskapp.auth.personal_tokens import SCOPES
from taskapp.models import Source
from taskapp.tasks.calendar_feed import EVENTS, FORMS, TODOS
from taskapp.web.schemas import (
    BaseSchema,
    DateTime,
    Id,
    OutOfRange,
    PageArgsSchema,
    Text,
    page_schema,
    parse_datetime,
)

TOKEN_EXAMPLE = {"example": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIyIn0.c2lnbmF0dXJl"}


DEMO_LOGIN = {"username": "admin", "password": "taskapp-demo"}
"""The ADMIN that ``flask demo seed`` (run by ./scripts/run) creates: Swagger UI's login
example, so "Try it out" logs in as shipped and every other example may then run."""


class LoginSchema(BaseSchema):
    username = Text(
        required=True,
        validate=ma.validate.Length(max=150),
        metadata={"example": DEMO_LOGIN["username"]},
    )
    password = Text(
        required=True,
        validate=ma.validate.Length(max=1024),
        metadata={"example": DEMO_LOGIN["password"]},
    )


class RefreshSchema(BaseSchema):
    refresh = Text(required=True, validate=ma.validate.Length(max=4096), metadata=TOKEN_EXAMPLE)


class TokenPairSchema(ma.Schema):
    access = ma.fields.String(metadata=TOKEN_EXAMPLE)
    refresh = ma.fields.String(metadata=TOKEN_EXAMPLE)


class RefreshedSchema(ma.Schema):
    """The answer of refresh: a pair, or only ``access`` when rotation is off."""

    access = ma.fields.String(metadata=TOKEN_EXAMPLE)
    refresh = ma.fields.String(
        metadata={
            **TOKEN_EXAMPLE,
            "optional": True,
            "description": "The next refresh token; absent when JWT_ROTATE_REFRESH_TOKENS "
            "is false (the one sent stays good until it expires).",
        }
    )


class Instant(ma.fields.Field):
    """An ISO 8601 datetime with any offset (UTC if none), as the task filters read it,
    but never clamped: outside years 1..9999 in UTC it is a 400."""

    def __init__(self, **kwargs):
        metadata = {"type": "string", "format": "date-time", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid datetime.")
        try:
            return parse_datetime(value, clamp=False)
        except OutOfRange as error:
            raise ma.ValidationError(str(error)) from None
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
    name = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=100),
        metadata={"example": "nightly export"},
    )
    scopes = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(SCOPES)),
        required=True,
        validate=ma.validate.Length(min=1, max=len(SCOPES)),
        metadata={"uniqueItems": True, "example": ["tasks:read", "logs:read"]},
    )
    expires_at = Instant(
        allow_none=True,
        metadata={
            "example": "2030-01-01T00:00:00Z",
            "description": "Must be in the future; null or left out: never expires.",
        },
    )

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


class CalendarFeedArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # calendar apps may add their own cache-busting parameters

    form = ma.fields.String(
        data_key="as",
        load_default=TODOS,
        validate=ma.validate.OneOf(FORMS),
        metadata={
            "description": f"`{TODOS}`: one VTODO per task (to-do apps); `{EVENTS}`: one "
            "all-day VEVENT on each due date, for calendar apps that show only events "
            "(Google Calendar, Apple Calendar)."
        },
    )
