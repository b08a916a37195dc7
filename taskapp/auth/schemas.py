import marshmallow as ma

from taskapp.web.schemas import BaseSchema, Text


class LoginSchema(BaseSchema):
    username = Text(required=True, validate=ma.validate.Length(max=150))
    password = Text(required=True, validate=ma.validate.Length(max=1024))


class RefreshSchema(BaseSchema):
    refresh = Text(required=True, validate=ma.validate.Length(max=4096))


class TokenPairSchema(ma.Schema):
    access = ma.fields.String(required=True)
    refresh = ma.fields.String(required=True)


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
