import marshmallow as ma

from taskapp.web.schemas import BaseSchema, Text

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
