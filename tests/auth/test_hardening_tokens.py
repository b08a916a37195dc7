"""Tokens signed with the app's own key but carrying odd claims: 401 ``token_not_valid``
on every route (refresh and logout included), never a 500; and authorization by the
role stored in the database, whatever the token says."""

import re
import time

import jwt as pyjwt
import pytest
from helpers import INVALID_TOKEN, JWT_SECRET, bearer

from taskapp.models import Role

INVALID_REFRESH = {"detail": "Token is invalid or expired", "code": "token_not_valid"}
MISSING = object()
ODD_CLAIMS = {
    "no-role": {"role": MISSING},
    "role-list": {"role": ["ADMIN"]},
    "role-object": {"role": {"ADMIN": True}},
    "role-number": {"role": 1},
    "role-unknown": {"role": "ROOT"},
    "role-nul": {"role": "ADMIN\x00"},
    "sid-nul": {"sid": "ab\x00cd"},
    "sid-number": {"sid": 5},
    "sid-list": {"sid": ["ab"]},
    "sid-empty": {"sid": ""},
    "sid-too-long": {"sid": "a" * 65},
    "sid-not-ascii": {"sid": "ab\u00e9cd"},
    "jti-nul": {"jti": "ab\x00cd"},
    "jti-number": {"jti": 5},
    "jti-object": {"jti": {"a": 1}},
    "jti-missing": {"jti": MISSING},
    "jti-too-long": {"jti": "a" * 65},
    "ver-string": {"ver": "1"},
    "ver-true": {"ver": True},
    "ver-float": {"ver": 1.0},
    "ver-null": {"ver": None},
    "ver-missing": {"ver": MISSING},
    "ver-huge": {"ver": 10**30},
    "exp-string": {"exp": "tomorrow"},
    "exp-huge": {"exp": 10**20},
    "exp-float-huge": {"exp": 1e300},
    "exp-infinite": {"exp": float("inf")},
    "exp-nan": {"exp": float("nan")},
    "exp-missing": {"exp": MISSING},
    "iat-string": {"iat": "now"},
    "iat-infinite": {"iat": float("-inf")},
    "nbf-list": {"nbf": [1]},
    "type-list": {"type": ["access"]},
    "type-number": {"type": 1},
    "type-unknown": {"type": "id"},
    "fresh-string": {"fresh": "yes"},
    "sub-number": {"sub": 1},
    "sub-list": {"sub": ["1"]},
    "sub-missing": {"sub": MISSING},
}


def odd_token(user_id: int, overrides: dict) -> str:
    """A token as the app mints it (signed with its key), with ``overrides`` applied;
    MISSING removes a claim."""
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "role": "ADMIN",
        "ver": 1,
        "sid": "0123456789abcdef0123456789abcdef",
        "type": "access",
        "jti": "0123456789abcdef",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "fresh": False,
        **overrides,
    }
    payload = {name: value for name, value in claims.items() if value is not MISSING}
    return pyjwt.encode(payload, JWT_SECRET, algorithm="HS256")


def api_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) of the API, with ids filled in as 1."""
    skipped = ("/api/docs", "/api/redoc", "/api/openapi")
    return sorted(
        (method, re.sub(r"<[^>]+>", "1", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and not rule.rule.startswith(skipped)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def authenticated_routes(client, app) -> list[tuple[str, str]]:
    """The routes that answer 401 without a token (login, refresh, the feed do not)."""
    found = []
    for method, path in api_routes(app):
        body = {} if method in {"POST", "PUT", "PATCH"} else None
        if client.open(path, method=method, json=body).status_code == 401:
            found.append((method, path))
    return found


def assert_not_valid(response, body=INVALID_TOKEN, where=""):
    assert response.status_code == 401, (where, response.status_code, response.get_data())
    assert response.get_json() == body, where
    assert response.headers["WWW-Authenticate"].startswith("Bearer"), where


def test_the_walk_finds_the_authenticated_routes(client, app):
    found = authenticated_routes(client, app)
    for route in [("GET", "/api/tasks/1/"), ("POST", "/api/auth/logout/"), ("GET", "/api/users/")]:
        assert route in found
    assert ("POST", "/api/auth/login/") not in found and len(found) >= 20


@pytest.mark.parametrize("overrides", ODD_CLAIMS.values(), ids=ODD_CLAIMS.keys())
def test_odd_claims_are_token_not_valid_on_every_route(client, app, admin, overrides):
    token = odd_token(admin.id, overrides)
    for method, path in authenticated_routes(client, app):
        body = {} if method in {"POST", "PUT", "PATCH"} else None
        response = client.open(path, method=method, json=body, headers=bearer(token))
        assert_not_valid(response, where=(method, path))


@pytest.mark.parametrize("overrides", ODD_CLAIMS.values(), ids=ODD_CLAIMS.keys())
def test_odd_claims_in_a_refresh_token_are_token_not_valid(client, admin, overrides, sql):
    overrides = {"type": "refresh", **overrides}
    token = odd_token(admin.id, overrides)
    refresh = client.post("/api/auth/refresh/", json={"refresh": token})
    assert_not_valid(refresh, INVALID_REFRESH, "refresh")
    logout = client.post("/api/auth/logout/", json={"refresh": token}, headers=admin.headers)
    assert_not_valid(logout, INVALID_REFRESH, "logout")
    # The refused logout ended nothing: the session is still alive.
    assert client.get("/api/auth/me/", headers=admin.headers).status_code == 200


def test_the_forged_tokens_are_good_but_for_the_odd_claim(client, admin):
    """The control: the same forging with ordinary claims is accepted, so every 401
    above is about the claim."""
    access = odd_token(admin.id, {})
    assert client.get("/api/auth/me/", headers=bearer(access)).status_code == 200
    refresh = odd_token(admin.id, {"type": "refresh", "jti": "fedcba9876543210"})
    assert client.post("/api/auth/refresh/", json={"refresh": refresh}).status_code == 200


def test_authorization_reads_the_role_in_the_database(client, admin, intern, make_task):
    """A token that claims ADMIN for an INTERN (signed with the app's key) gets the
    INTERN's rights; one that claims INTERN for an ADMIN gets the ADMIN's."""
    claims_admin = bearer(odd_token(intern.id, {"role": "ADMIN"}))
    assert client.get("/api/users/", headers=claims_admin).status_code == 403
    others = make_task(admin, "the admin's own")
    assert client.get(f"/api/tasks/{others['id']}/", headers=claims_admin).status_code == 404
    claims_intern = bearer(odd_token(admin.id, {"role": "INTERN"}))
    assert client.get("/api/users/", headers=claims_intern).status_code == 200
    me = client.get("/api/auth/me/", headers=claims_intern).get_json()
    assert me["role"] == Role.ADMIN.value


def test_the_role_check_costs_no_extra_query(client, admin, count_queries):
    """The role comes with the session check's one query: an ADMIN-only list runs the
    token query and the listing's own queries, no SELECT of the user besides."""
    with count_queries() as statements:
        assert client.get("/api/users/", headers=admin.headers).status_code == 200
    token_queries = [s for s in statements if "revoked_session" in s]
    assert len(token_queries) == 1
    user_selects = [s for s in statements if s is not token_queries[0] and "user_account.role" in s]
    assert all("LIMIT" in s or "count" in s.lower() for s in user_selects), statements
