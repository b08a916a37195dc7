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
