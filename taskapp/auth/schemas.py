import marshmallow as ma

from taskapp.fields import Text
from taskapp.schemas import BaseSchema


class LoginSchema(BaseSchema):
    username = Text(required=True, validate=ma.validate.Length(max=150))
    password = Text(required=True, validate=ma.validate.Length(max=1024))


class RefreshSchema(BaseSchema):
    refresh = Text(required=True, validate=ma.validate.Length(max=4096))


class TokenPairSchema(ma.Schema):
    access = ma.fields.String(required=True)
    refresh = ma.fields.String(required=True)
