"""Which personal access tokens and token events a listing shows."""

from sqlalchemy import Select, select

from taskapp.auth.models import PersonalAccessToken, TokenEvent
from taskapp.auth.personal_tokens import live_tokens
from taskapp.errors import PermissionDenied
from taskapp.models import Role
from taskapp.users.models import User


def listed_tokens(caller: User, args: dict) -> Select:
    """The caller's own tokens; an ADMIN may ask for one user's (``user``) or
    everyone's (``all``). Anyone else naming another user: PermissionDenied."""
    query = live_tokens()
    wants_other = args.get("all") or args.get("user", caller.id) != caller.id
    if wants_other and caller.role != Role.ADMIN:
        raise PermissionDenied()
    if args.get("all"):
        return query
    return query.where(PersonalAccessToken.user_id == args.get("user", caller.id))


def token_events(args: dict) -> Select:
    query = select(TokenEvent).order_by(TokenEvent.created_at.desc(), TokenEvent.id.desc())
    if "owner" in args:
        query = query.where(TokenEvent.owner_id == args["owner"])
    return query
