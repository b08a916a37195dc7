"""A JWT the app has verified once is remembered by its header (web/verified_tokens.py):
the same token again must be answered exactly as if it were decoded afresh, expiry,
revocation, a changed user and another app's key included."""

import time
from datetime import UTC, datetime, timedelta

from helpers import JWT_SECRET, assert_unauthorized, bearer, forge_token, login

from taskapp.web import verified_tokens


def me(client, token: str):
    return client.get("/api/auth/me/", headers=bearer(token))


def test_a_remembered_token_still_expires(client, intern):
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    token = forge_token(intern.id, role="INTERN", exp=expires)
    assert me(client, token).status_code == 200
    assert me(client, token).status_code == 200
    time.sleep(max(0.0, expires.timestamp() - time.time()) + 0.1)
    assert_unauthorized(me(client, token))


def test_a_remembered_token_dies_with_logout_and_deactivation(api, client, admin, intern):
    assert me(client, intern.tokens["access"]).status_code == 200
    api.as_(intern).post("/api/auth/logout/", json={"refresh": intern.tokens["refresh"]})
    assert_unauthorized(me(client, intern.tokens["access"]))

    second = login(client, "intern")["access"]
    assert me(client, second).status_code == 200
    api.as_(admin).patch(f"/api/users/{intern.id}/", json={"is_active": False})
    assert_unauthorized(me(client, second))


def test_a_remembered_token_carries_the_role_the_database_holds(api, client, admin, intern):
    token = intern.tokens["access"]
    assert api.as_(bearer(token)).get("/api/users/").status_code == 403
    api.as_(admin).patch(f"/api/users/{intern.id}/", json={"role": "ADMIN"})
    assert_unauthorized(api.as_(bearer(token)).get("/api/users/"))


def test_a_token_one_app_accepted_is_not_accepted_by_an_app_with_another_key(make_app, intern):
    ours = make_app().test_client()
    token = forge_token(intern.id, role="INTERN")
    assert me(ours, token).status_code == 200
    rotated = make_app(JWT_SECRET_KEY=JWT_SECRET[::-1]).test_client()
    assert_unauthorized(me(rotated, token))
    assert me(ours, token).status_code == 200


def test_a_header_that_was_refused_is_refused_again(client, intern):
    forged = forge_token(intern.id, secret=JWT_SECRET[::-1], role="INTERN")
    assert_unauthorized(me(client, forged))
    assert_unauthorized(me(client, forged))


def test_exp_is_compared_as_pyjwt_compares_it(client, intern):
    """PyJWT counts a fractional ``exp`` by its whole seconds: so must the memo."""
    whole = int(time.time()) + 2
    token = forge_token(intern.id, role="INTERN", exp=whole + 0.9)
    assert me(client, token).status_code == 200
    time.sleep(max(0.0, whole - time.time()) + 0.2)
    assert_unauthorized(me(client, token))


def test_only_a_plain_bearer_header_is_remembered(app, client, intern):
    """A token among other comma-separated values is accepted, and verified every time:
    one token padded many ways must not fill the memo."""
    memo = verified_tokens.of(app)
    token = intern.tokens["access"]
    for padding in ("x", "y" * 1000):
        padded = {"Authorization": f"Bearer {token}, {padding}"}
        assert client.get("/api/auth/me/", headers=padded).status_code == 200
    assert len(memo) == 0
    assert me(client, token).status_code == 200
    assert len(memo) == 1


def test_a_refused_remembered_token_is_forgotten(api, app, client, admin, intern):
    memo, header = verified_tokens.of(app), bearer(intern.tokens["access"])["Authorization"]
    assert me(client, intern.tokens["access"]).status_code == 200
    assert memo.claims(header) is not None
    api.as_(admin).patch(f"/api/users/{intern.id}/", json={"is_active": False})
    assert_unauthorized(me(client, intern.tokens["access"]))
    assert memo.claims(header) is None
