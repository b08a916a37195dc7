"""``flask users ...``: create, list, change role or password, deactivate. The rules are
the API's (its schemas and ``users/service.py``). An unknown user is reported before
any password prompt."""

import click
from flask import current_app
from sqlalchemy import select

from taskapp.cli import CheckedGroup, commit, json_option, print_rows, validated, when
from taskapp.extensions import db
from taskapp.models import Role
from taskapp.users import service
from taskapp.users.models import User
from taskapp.users.passwords import PasswordHashing
from taskapp.users.schemas import UserCreateSchema, UserUpdateSchema

users_cli = CheckedGroup("users", help="Manage users.")
COMMANDS = (users_cli,)
ROLE = click.Choice([role.value for role in Role], case_sensitive=False)
PASSWORD_HELP = "Prompted (hidden, confirmed) when not given."


def user_or_fail(username: str) -> User:
    user = service.find_by_username(db.session, username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


def _hashing() -> PasswordHashing:
    return PasswordHashing.of(current_app)


def _password(given: str | None) -> str:
    """The ``--password`` given, else prompted (hidden, confirmed): asked only once the
    command knows the rest of its input is good."""
    if given is not None:
        return given
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=ROLE, default=Role.INTERN.value, show_default=True)
@click.option("--email", default="")
@click.option("--password", default=None, help=PASSWORD_HELP)
def create_user(username: str, role: str, email: str, password: str | None) -> None:
    """Create a user (the same rules as POST /api/users/)."""
    if service.find_by_username(db.session, username) is not None:
        raise click.ClickException(f"a user named {username!r} already exists")
    data = {"username": username, "password": _password(password), "role": role.upper()}
    if email:
        data["email"] = email
    fields = validated(UserCreateSchema(), data)
    try:
        user = service.create_user(
            db.session,
            fields["username"],
            fields["password"],
            fields["role"],
            fields.get("email", ""),
            hashing=PasswordHashing.of(current_app),
        )
    except service.UsernameTaken as error:
        raise click.ClickException(str(error)) from None
    commit(f"created user {user.username} (id {user.id}, {user.role.value})")


@users_cli.command("list")
@json_option
def list_users(as_json: bool) -> None:
    """List users: id, username, role (ADMIN or INTERN), state, e-mail, joined."""
    users = db.session.execute(select(User).order_by(User.id)).scalars()
    rows = (
        {
            "id": user.id,
            "username": user.username,
            "role": user.role.value,
            "state": "active" if user.is_active else "inactive",
            "email": user.email,
            "joined": when(user.date_joined),
        }
        for user in users
    )
    print_rows(rows, as_json, "no users")


@users_cli.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE)
def set_role(username: str, role: str) -> None:
    """Change a user's role (their tokens stop working)."""
    user = user_or_fail(username)
    service.update_user(user, {"role": Role(role.upper())}, hashing=_hashing())
    commit(f"{user.username} is now {user.role.value}")


@users_cli.command("set-password")
@click.argument("username")
@click.option("--password", default=None, help=PASSWORD_HELP)
def set_password(username: str, password: str | None) -> None:
    """Change a user's password (their tokens stop working)."""
    user = user_or_fail(username)
    changes = validated(UserUpdateSchema(), {"password": _password(password)})
    service.update_user(user, changes, hashing=_hashing())
    commit(f"password of {user.username} changed")


@users_cli.command("deactivate")
@click.argument("username")
def deactivate(username: str) -> None:
    """Deactivate a user (their tokens stop working; their tasks and logs stay)."""
    user = user_or_fail(username)
    service.update_user(user, {"is_active": False}, hashing=_hashing())
    commit(f"{user.username} deactivated")
