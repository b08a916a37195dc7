"""``flask users tokens|revoke-token``: a user's personal access tokens, seen and
revoked by an operator. They join the ``users`` group (an operator thinks of them as a
user's), so this module adds no group of its own."""

import click

from taskapp.auth import personal_tokens
from taskapp.auth.models import PersonalAccessToken
from taskapp.cli import commit, json_option, print_rows, when
from taskapp.extensions import db
from taskapp.models import Source
from taskapp.users.cli import user_or_fail, users_cli

COMMANDS = ()


@users_cli.command("tokens")
@click.argument("username")
@json_option
def list_tokens(username: str, as_json: bool) -> None:
    """List a user's personal access tokens (never their secrets)."""
    user = user_or_fail(username)
    query = personal_tokens.live_tokens().where(PersonalAccessToken.user_id == user.id)
    rows = (
        {
            "id": token.id,
            "name": token.name,
            "scopes": ",".join(token.scope_list),
            "created": when(token.created_at),
            "expires": when(token.expires_at),
            "last_used": when(token.last_used_at),
        }
        for token in db.session.execute(query).scalars()
    )
    print_rows(rows, as_json, f"{user.username} has no personal access tokens", "never")


@users_cli.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Revoke a personal access token by id (it stops working at once)."""
    token = db.session.get(PersonalAccessToken, token_id)
    if token is None:
        raise click.ClickException(f"no personal access token with id {token_id}")
    personal_tokens.revoke(db.session, token, actor_id=None, source=Source.CLI)
    commit(f"revoked token {token_id} ({token.name}) of user id {token.user_id}")
