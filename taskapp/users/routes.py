"""User administration (ADMIN only). Users are deactivated, never deleted."""

from flask import abort
from flask.views import MethodView
from flask_jwt_extended import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from taskapp.api import ID_IN_PATH, Blueprint
from taskapp.extensions import db
from taskapp.models import Role, User
from taskapp.ordering import order_by_keys
from taskapp.pagination import paginate
from taskapp.users import service
from taskapp.users.schemas import (
    UserCreateSchema,
    UserPageSchema,
    UserQueryArgsSchema,
    UserSchema,
    UserUpdateSchema,
)

blp = Blueprint("users", __name__, url_prefix="/api/users", description="User administration")
ADMIN = Role.ADMIN.value


def _filtered(args: dict):
    query = select(User)
    if "role" in args:
        query = query.where(User.role == args["role"])
    if "is_active" in args:
        query = query.where(User.is_active == args["is_active"])
    if args.get("search"):
        term = args["search"].lower()
        query = query.where(
            or_(
                func.lower(User.username).contains(term, autoescape=True),
                func.lower(User.email).contains(term, autoescape=True),
            )
        )
    return order_by_keys(query, User, [("id", False)])


def _locks_out(changes: dict) -> bool:
    return changes.get("is_active") is False or changes.get("role", Role.ADMIN) != Role.ADMIN


def _get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, "No User matches the given query.")
    return user


@blp.route("/")
class Users(MethodView):
    @blp.auth_required(ADMIN)
    @blp.arguments(UserQueryArgsSchema, location="query")
    @blp.response(200, UserPageSchema)
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """List users"""
        return paginate(_filtered(args), args["page"], args["page_size"])

    @blp.auth_required(ADMIN)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, schema="Error", description="Username taken (case-insensitive)")
    def post(self, data):
        """Create a user (role defaults to INTERN)"""
        try:
            user = service.create_user(**data)
            db.session.commit()
        except (service.UsernameTaken, IntegrityError):
            db.session.rollback()
            abort(409, "A user with that username already exists.")
        return user


@blp.route(f"/<{ID_IN_PATH}:user_id>/")
class UserById(MethodView):
    @blp.auth_required(ADMIN)
    @blp.response(200, UserSchema)
    @blp.alt_response(404, schema="Error", description="No such user")
    def get(self, user_id):
        """One user"""
        return _get_user(user_id)

    @blp.auth_required(ADMIN)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(404, schema="Error", description="No such user")
    @blp.alt_response(403, schema="Error", description="Not an ADMIN, or locking yourself out")
    def patch(self, data, user_id):
        """Change a user's email, role, activation or password (role, password and
        deactivation end the user's sessions at once)"""
        user = _get_user(user_id)
        if user.id == current_user.id and _locks_out(data):
            abort(403, "You cannot deactivate yourself or give up your own ADMIN role.")
        service.update_user(user, data)
        db.session.commit()
        return user
