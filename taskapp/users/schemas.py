import marshmallow as ma

from taskapp.models import Role
from taskapp.web.schemas import (
    BaseSchema,
    Boolean,
    DateTime,
    Email,
    FullMatch,
    PageArgsSchema,
    Text,
    page_schema,
)

USERNAME = FullMatch(
    r"^[\w.@+-]{1,150}$",
    error="Enter a valid username: up to 150 letters, digits and @/./+/-/_ characters.",
)
PASSWORD = ma.validate.Length(min=8, max=1024)


EMAIL_EXAMPLE = {"example": "intern@example.com"}
PASSWORD_EXAMPLE = {"example": "correct horse battery"}


class UserSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True, metadata={"example": 2})
    username = ma.fields.String(metadata={"example": "intern"})
    email = ma.fields.String(metadata={**EMAIL_EXAMPLE, "description": "May be empty."})
    role = ma.fields.Enum(Role, metadata={"example": "INTERN"})
    is_active = ma.fields.Boolean(metadata={"example": True})
    date_joined = DateTime(dump_only=True)


class UserCreateSchema(BaseSchema):
    username = ma.fields.String(
        required=True,
        validate=USERNAME,
        metadata={"pattern": USERNAME.regex.pattern, "example": "carol"},
    )
    password = Text(required=True, load_only=True, validate=PASSWORD, metadata=PASSWORD_EXAMPLE)
    email = Email(
        validate=ma.validate.Length(max=254),
        metadata={"example": "carol@example.com", "description": "Optional; empty if left out."},
    )
    role = ma.fields.Enum(Role, load_default=Role.INTERN, metadata={"example": "INTERN"})


class UserUpdateSchema(BaseSchema):
    email = Email(validate=ma.validate.Length(max=254), metadata=EMAIL_EXAMPLE)
    role = ma.fields.Enum(Role, metadata={"example": "ADMIN"})
    is_active = Boolean(metadata={"example": False})
    password = Text(load_only=True, validate=PASSWORD, metadata=PASSWORD_EXAMPLE)


UPDATE_EXAMPLE = {"email": "intern@example.com", "is_active": True}
"""The body Swagger UI pre-fills for PATCH: a harmless change (its sample of every field
would make the user an ADMIN, deactivate them and set their password)."""


class UserQueryArgsSchema(PageArgsSchema):
    role = ma.fields.Enum(Role, metadata={"description": "Only users with this role."})
    is_active = ma.fields.Boolean(
        metadata={"description": "true: active users only; false: deactivated ones only."}
    )
    search = Text(
        validate=ma.validate.Length(max=200),
        metadata={"description": "Case-insensitive text in the username or the e-mail."},
    )


UserPageSchema = page_schema(UserSchema, "UserPageSchema")
