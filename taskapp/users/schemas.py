import marshmallow as ma

from taskapp.models import Role
from taskapp.web.schemas import BaseSchema, Email, FullMatch, PageArgsSchema, Text, page_schema

USERNAME = FullMatch(
    r"^[\w.@+-]{1,150}$",
    error="Enter a valid username: up to 150 letters, digits and @/./+/-/_ characters.",
)
PASSWORD = ma.validate.Length(min=8, max=1024)


class UserSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.Enum(Role)
    is_active = ma.fields.Boolean()
    date_joined = ma.fields.DateTime(dump_only=True)


class UserCreateSchema(BaseSchema):
    username = ma.fields.String(
        required=True, validate=USERNAME, metadata={"pattern": USERNAME.regex.pattern}
    )
    password = Text(required=True, load_only=True, validate=PASSWORD)
    email = Email(load_default="", validate=ma.validate.Length(max=254))
    role = ma.fields.Enum(Role, load_default=Role.INTERN)


class UserUpdateSchema(BaseSchema):
    email = Email(validate=ma.validate.Length(max=254))
    role = ma.fields.Enum(Role)
    is_active = ma.fields.Boolean()
    password = Text(load_only=True, validate=PASSWORD)


class UserQueryArgsSchema(PageArgsSchema):
    role = ma.fields.Enum(Role)
    is_active = ma.fields.Boolean()
    search = Text(validate=ma.validate.Length(max=200))


UserPageSchema = page_schema(UserSchema, "UserPageSchema")
