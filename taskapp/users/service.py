"""User operations shared by the API and the CLI. Nothing here commits."""

from sqlalchemy import func, select

from taskapp.auth.passwords import hash_password
from taskapp.extensions import db
from taskapp.models import Role, User


class UsernameTaken(ValueError):
    pass


def create_user(username: str, password: str, role: Role = Role.INTERN, email: str = "") -> User:
    """Usernames are unique regardless of case (a unique index on lower(username) backs
    this check against concurrent creates)."""
    if find_by_username(username) is not None:
        raise UsernameTaken(f"A user with username {username!r} already exists.")
    user = User(username=username, password_hash=hash_password(password), role=role, email=email)
    db.session.add(user)
    db.session.flush()
    return user


def update_user(user: User, changes: dict) -> None:
    """Apply changes; a new role, password or deactivation kills the user's tokens."""
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
        user.token_version += 1
    for field in ("role", "is_active"):
        if field in changes and changes[field] != getattr(user, field):
            user.token_version += 1
    for field, value in changes.items():
        setattr(user, field, value)


def find_by_username(username: str) -> User | None:
    query = select(User).where(func.lower(User.username) == username.lower())
    return db.session.execute(query).scalar_one_or_none()
