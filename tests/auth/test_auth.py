"""Login, refresh rotation, logout, token validation, immediate invalidation, rate limit."""

from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from helpers import PASSWORD, assert_unauthorized, bearer, forge_token, login

from taskapp.models import Role

BAD_CREDENTIALS = {"detail": "No active account found with the given credentials"}
NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
INVALID_REFRESH = {"detail": "Token is invalid or expired", "code": "token_not_valid"}
"""SimpleJWT's answers, ``code`` included, so a DRF client's refresh-on-401 logic works."""


def test_login_returns_exactly_access_and_refresh(client, intern):
    response = client.post("/api/auth/login/", json={"username": "intern", "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.get_json()) == {"access", "refresh"}
    claims = pyjwt.decode(response.get_json()["access"], options={"verify_signature": False})
    assert claims["sub"] == str(intern.id)
    assert claims["role"] == "INTERN"
    assert claims["type"] == "access"


def test_login_username_is_case_insensitive(client, intern):
    assert login(client, "INTERN")["access"]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "intern", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},
    ],
)
def test_login_failure_body(client, intern, body):
    assert_unauthorized(client.post("/api/auth/login/", json=body), BAD_CREDENTIALS)


def test_inactive_user_cannot_log_in(api, client, admin, intern):
    api.as_(admin).patch(f"/api/users/{intern.id}/", json={"is_active": False})
    response = client.post("/api/auth/login/", json={"username": "intern", "password": PASSWORD})
    assert_unauthorized(response, BAD_CREDENTIALS)


def test_login_requires_both_fields(client):
    response = client.post("/api/auth/login/", json={"username": "x"})
    assert response.status_code == 400
    assert response.get_json() == {"password": ["This field is required."]}


def test_refresh_rotates_and_old_refresh_stops_working(api, client, intern):
    old = intern.tokens["refresh"]
    response = client.post("/api/auth/refresh/", json={"refresh": old})
    assert response.status_code == 200
    pair = response.get_json()
    assert set(pair) == {"access", "refresh"} and pair["refresh"] != old
    assert api.as_(bearer(pair["access"])).get("/api/auth/me/").status_code == 200
    assert client.post("/api/auth/refresh/", json={"refresh": pair["refresh"]}).status_code == 200


def test_replayed_refresh_token_ends_the_whole_session(api, make_app, intern):
    """Reuse of a rotated refresh token means it leaked: the session ends for whoever
    holds its newer tokens too (OAuth 2.0 Security BCP, refresh token rotation). (Past
    the reuse grace, here none: tests/auth/test_hardening_refresh.py covers the grace.)"""
    client = make_app(JWT_REFRESH_REUSE_GRACE_SECONDS=0).test_client()
    old = intern.tokens["refresh"]
    pair = client.post("/api/auth/refresh/", json={"refresh": old}).get_json()
    newer = client.post("/api/auth/refresh/", json={"refresh": pair["refresh"]}).get_json()
    replay = client.post("/api/auth/refresh/", json={"refresh": old})
    assert_unauthorized(replay, INVALID_REFRESH)
    for access in (intern.tokens["access"], pair["access"], newer["access"]):
        assert_unauthorized(api.as_(bearer(access)).get("/api/auth/me/"))
    assert client.post("/api/auth/refresh/", json={"refresh": newer["refresh"]}).status_code == 401
    assert (
        api.as_(bearer(login(client, "intern")["access"])).get("/api/auth/me/").status_code == 200
    )


def test_logout_ends_every_token_of_the_login(api, client, intern):
    """An access token from before a refresh rotation dies with the logout too."""
    first_access = intern.tokens["access"]
    pair = client.post("/api/auth/refresh/", json={"refresh": intern.tokens["refresh"]}).get_json()
    assert api.as_(bearer(first_access)).get("/api/auth/me/").status_code == 200
    logout = api.as_(bearer(pair["access"])).post(
        "/api/auth/logout/", json={"refresh": pair["refresh"]}
    )
    assert logout.status_code == 204
    for access in (first_access, pair["access"]):
        assert_unauthorized(api.as_(bearer(access)).get("/api/auth/me/"))
    assert client.post("/api/auth/refresh/", json={"refresh": pair["refresh"]}).status_code == 401


def test_session_check_is_the_one_token_query(api, intern, count_queries):
    with count_queries() as statements:
        assert api.as_(intern).get("/api/auth/me/").status_code == 200
    assert len(statements) == 1, statements
    assert "revoked_session" in statements[0] and "revoked_token" in statements[0]


def test_logout_revokes_access_and_refresh(api, client, intern):
    response = api.as_(intern).post("/api/auth/logout/", json={"refresh": intern.tokens["refresh"]})
    assert response.status_code == 204
    assert_unauthorized(api.as_(intern).get("/api/auth/me/"))
    refresh = client.post("/api/auth/refresh/", json={"refresh": intern.tokens["refresh"]})
    assert refresh.status_code == 401


def test_logout_keeps_other_sessions(api, client, intern):
    second = login(client, "intern")
    api.as_(intern).post("/api/auth/logout/", json={"refresh": intern.tokens["refresh"]})
    assert api.as_(bearer(second["access"])).get("/api/auth/me/").status_code == 200


def test_logout_with_someone_elses_refresh_is_refused(api, intern, other_intern):
    response = api.as_(intern).post(
        "/api/auth/logout/",
        json={"refresh": other_intern.tokens["refresh"]},
    )
    assert response.status_code == 401
    assert api.as_(other_intern).get("/api/auth/me/").status_code == 200


def test_me_returns_the_user_object(api, intern):
    response = api.as_(intern).get("/api/auth/me/")
    body = response.get_json()
    assert set(body) == {"id", "username", "email", "role", "is_active", "date_joined"}
    assert body["id"] == intern.id and body["role"] == "INTERN" and body["is_active"] is True
    assert body["date_joined"].endswith("Z")


def test_no_token(client):
    assert_unauthorized(client.get("/api/tasks/"), NOT_PROVIDED)


@pytest.mark.parametrize("header", ["Bearer", "Token abc", "Bearer a b", "Basic dXNlcjpwYXNz"])
def test_malformed_authorization_header(client, header):
    response = client.get("/api/tasks/", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "detail" in response.get_json()


def test_forged_tokens_are_refused(api, intern):
    good = forge_token(intern.id, role="INTERN")
    assert api.as_(bearer(good)).get("/api/auth/me/").status_code == 200
    forged = [
        forge_token(intern.id, exp=datetime.now(UTC) - timedelta(seconds=1)),
        forge_token(intern.id, secret="another-secret-key-of-sufficient-length!"),
        forge_token(intern.id, secret=None, algorithm="none"),
        "not.a.jwt",
        "abc",
    ]
    for token in forged:
        assert_unauthorized(api.as_(bearer(token)).get("/api/auth/me/"))


def test_token_of_wrong_type_is_refused(api, client, intern):
    assert_unauthorized(api.as_(bearer(intern.tokens["refresh"])).get("/api/auth/me/"))
    response = client.post("/api/auth/refresh/", json={"refresh": intern.tokens["access"]})
    assert response.status_code == 401


def test_deactivation_kills_live_tokens_at_once(api, client, admin, intern):
    response = api.as_(admin).patch(f"/api/users/{intern.id}/", json={"is_active": False})
    assert response.status_code == 200 and response.get_json()["is_active"] is False
    assert_unauthorized(api.as_(intern).get("/api/auth/me/"))
    assert (
        client.post("/api/auth/refresh/", json={"refresh": intern.tokens["refresh"]}).status_code
        == 401
    )


def test_role_change_takes_effect_at_once(api, client, admin, intern):
    assert api.as_(intern).get("/api/users/").status_code == 403
    api.as_(admin).patch(f"/api/users/{intern.id}/", json={"role": "ADMIN"})
    assert_unauthorized(api.as_(intern).get("/api/users/"))
    promoted = login(client, "intern")
    assert api.as_(bearer(promoted["access"])).get("/api/users/").status_code == 200


def test_password_change_kills_tokens(api, client, admin, intern):
    api.as_(admin).patch(f"/api/users/{intern.id}/", json={"password": "a brand new password"})
    assert_unauthorized(api.as_(intern).get("/api/auth/me/"))
    assert login(client, "intern", "a brand new password")["access"]


def test_unchanged_role_keeps_tokens(api, admin, intern):
    api.as_(admin).patch(f"/api/users/{intern.id}/", json={"role": "INTERN"})
    assert api.as_(intern).get("/api/auth/me/").status_code == 200


def test_sixth_failed_login_in_a_minute_is_throttled(client, intern, other_intern):
    wrong = {"username": "intern", "password": "wrong"}
    for _ in range(5):
        assert client.post("/api/auth/login/", json=wrong).status_code == 401
    response = client.post("/api/auth/login/", json=wrong)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["detail"].startswith("Request was throttled.")
    right = {"username": "intern", "password": PASSWORD}
    assert client.post("/api/auth/login/", json=right).status_code == 429
    assert login(client, "other")["access"]


def test_successful_logins_do_not_count(client, intern):
    for _ in range(8):
        login(client, "intern")


def test_passwords_are_stored_as_argon2id_hashes(app, sql, intern):
    [(stored,)] = sql("SELECT password_hash FROM user_account WHERE username = 'intern'")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_production_hash_parameters_meet_owasp(make_app):
    from argon2 import extract_parameters

    from taskapp.config import load_config
    from taskapp.users.passwords import PasswordHashing, hash_password

    defaults = load_config()
    app = make_app(
        PASSWORD_HASH_TIME_COST=defaults["PASSWORD_HASH_TIME_COST"],
        PASSWORD_HASH_MEMORY_KIB=defaults["PASSWORD_HASH_MEMORY_KIB"],
        PASSWORD_HASH_PARALLELISM=defaults["PASSWORD_HASH_PARALLELISM"],
    )
    with app.app_context():
        params = extract_parameters(hash_password(PasswordHashing.of(app), "x" * 12))
    assert params.type.name == "ID"
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2


def test_no_answer_contains_a_password_or_hash(api, admin, intern):
    created = api.as_(admin).post(
        "/api/users/",
        json={"username": "newbie", "password": "s3cret-password!", "role": "INTERN"},
    )
    answers = [
        created,
        api.as_(admin).get("/api/users/"),
        api.as_(admin).get(f"/api/users/{intern.id}/"),
        api.as_(admin).patch(f"/api/users/{intern.id}/", json={"password": "other-password!"}),
        api.as_(admin).get("/api/auth/me/"),
    ]
    for answer in answers:
        text = answer.get_data(as_text=True)
        assert answer.status_code in (200, 201)
        assert "password" not in text and "$argon2" not in text and "s3cret" not in text


def test_roles_enum_is_complete():
    assert {role.value for role in Role} == {"ADMIN", "INTERN"}


def test_purge_job_drops_ended_sessions_once_expired(api, app, intern, sql):
    api.as_(intern).post("/api/auth/logout/", json={"refresh": intern.tokens["refresh"]})
    assert sql("SELECT count(*) FROM revoked_session") == [(1,)]
    app.extensions["celery"].tasks["taskapp.purge_revoked_tokens"].apply()
    assert sql("SELECT count(*) FROM revoked_session") == [(1,)]
    sql("UPDATE revoked_session SET expires_at = :past", past=datetime(2000, 1, 1, tzinfo=UTC))
    app.extensions["celery"].tasks["taskapp.purge_revoked_tokens"].apply()
    assert sql("SELECT count(*) FROM revoked_session") == [(0,)]
