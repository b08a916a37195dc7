"""User rules shared by the API and the CLI. Nothing here commits."""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapp.errors import Conflict, PermissionDenied
from taskapp.models import Role
from taskapp.users.models import User
from taskapp.users.passwords import (
    PasswordHashing,
    burn_equal_time,
    hash_password,
    needs_rehash,
    verify_password,
)


class UsernameTaken(Conflict):
    def __init__(self, username: str):
        super().__init__("A user with that username already exists.")
        self.username = username


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role = Role.INTERN,
    email: str = "",
    *,
    hashing: PasswordHashing,
) -> User:
    """Usernames are unique regardless of case (a unique index on lower(username) backs
    this check against concurrent creates)."""
    if find_by_username(session, username) is not None:
        raise UsernameTaken(username)
    user = User(
        username=username, password_hash=hash_password(hashing, password), role=role, email=email
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise UsernameTaken(username) from None
    return user


def update_user(
    user: User, changes: dict, *, hashing: PasswordHashing, acting: User | None = None
) -> None:
    """Apply changes; a new role, password or deactivation kills the user's tokens. An
    ADMIN (``acting``) cannot deactivate themselves or give up their own ADMIN role."""
    if acting is not None and acting.id == user.id and _locks_out(changes):
        raise PermissionDenied("You cannot deactivate yourself or give up your own ADMIN role.")
    if "password" in changes:
        user.password_hash = hash_password(hashing, changes.pop("password"))
        user.token_version += 1
    for field in ("role", "is_active"):
        if field in changes and changes[field] != getattr(user, field):
            user.token_version += 1
    for field, value in changes.items():
        setattr(user, field, value)


def authenticate(
    session: Session, username: str, password: str, hashing: PasswordHashing
) -> User | None:
    """The active user with these credentials, else None. Unknown usernames cost the
    same time as wrong passwords (no enumeration by timing); an outdated hash is
    upgraded (the caller commits)."""
    user = find_by_username(session, username)
    if user is None:
        burn_equal_time(hashing, password)
        return None
    if not verify_password(hashing, user.password_hash, password) or not user.is_active:
        return None
    if needs_rehash(hashing, user.password_hash):
        user.password_hash = hash_password(hashing, password)
    return user


def find_by_username(session: Session, username: str) -> User | None:
    query = select(User).where(func.lower(User.username) == username.lower())
    return session.execute(query).scalar_one_or_none()


def _locks_out(changes: dict) -> bool:
    return changes.get("is_active") is False or changes.get("role", Role.ADMIN) != Role.ADMIN
