"""User administration (ADMIN only). Users are deactivated, never deleted."""

from flask import current_app
from flask.views import MethodView

from taskapp.errors import NotFound
from taskapp.extensions import db
from taskapp.models import Role
from taskapp.users import service
from taskapp.users.models import User
from taskapp.users.passwords import PasswordHashing
from taskapp.users.queries import filtered_users
from taskapp.users.schemas import (
    UPDATE_EXAMPLE,
    UserCreateSchema,
    UserPageSchema,
    UserQueryArgsSchema,
    UserSchema,
    UserUpdateSchema,
)
from taskapp.web.api import ID_IN_PATH, Blueprint
from taskapp.web.paging import paginate
from taskapp.web.permissions import current_user, forbid_personal_token

blp = Blueprint("users", __name__, url_prefix="/api/users", description="User administration")
ADMIN = Role.ADMIN.value


def _get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("User")
    return user


@blp.route("/")
class Users(MethodView):
    @blp.auth_required(ADMIN, scope="users:read")
    @blp.arguments(UserQueryArgsSchema, location="query")
    @blp.response(200, UserPageSchema)
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """List users"""
        return paginate(filtered_users(args), args["page"], args["page_size"])

    @blp.auth_required(ADMIN, scope="users:write")
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, schema="Error", description="Username taken (case-insensitive)")
    def post(self, data):
        """Create a user (role defaults to INTERN)"""
        user = service.create_user(db.session, **data, hashing=PasswordHashing.of(current_app))
        db.session.commit()
        return user


@blp.route(f"/<{ID_IN_PATH}:user_id>/")
class UserById(MethodView):
    @blp.auth_required(ADMIN, scope="users:read")
    @blp.response(200, UserSchema)
    @blp.not_found("No such user")
    def get(self, user_id):
        """One user"""
        return _get_user(user_id)

    @blp.auth_required(ADMIN, scope="users:write")
    @blp.arguments(UserUpdateSchema, required=False, example=UPDATE_EXAMPLE)
    @blp.response(200, UserSchema)
    @blp.not_found("No such user")
    @blp.alt_response(403, schema="Error", description="Not an ADMIN, or locking yourself out")
    def patch(self, data, user_id):
        """Change a user's email, role, activation or password (role, password and
        deactivation end the user's sessions at once)"""
        if "password" in data:
            forbid_personal_token()
        user = _get_user(user_id)
        service.update_user(
            user, data, hashing=PasswordHashing.of(current_app), acting=current_user
        )
        db.session.commit()
        return user
