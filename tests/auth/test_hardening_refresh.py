"""Refresh as a SimpleJWT client expects it: rotation with reuse detection by default,
a short grace for a second use of the same refresh token (racing tabs, retried
requests), and JWT_ROTATE_REFRESH_TOKENS=false for SimpleJWT's own defaults."""

import time
from concurrent.futures import ThreadPoolExecutor

from helpers import bearer, login, only_postgresql

INVALID_REFRESH = {"detail": "Token is invalid or expired", "code": "token_not_valid"}


def refresh(client, token: str):
    return client.post("/api/auth/refresh/", json={"refresh": token})


def me(client, access: str) -> int:
    return client.get("/api/auth/me/", headers=bearer(access)).status_code


def test_a_second_use_within_the_grace_answers_a_pair_of_the_same_session(client, intern):
    old = intern.tokens["refresh"]
    first = refresh(client, old)
    second = refresh(client, old)
    assert first.status_code == 200 and second.status_code == 200, second.get_json()
    assert set(second.get_json()) == {"access", "refresh"}
    for pair in (first.get_json(), second.get_json()):
        assert me(client, pair["access"]) == 200
        # Each answer's refresh token is a live one of the same session: it rotates.
        assert refresh(client, pair["refresh"]).status_code == 200
    assert me(client, intern.tokens["access"]) == 200
    # One logout still ends every token of the session, the grace pairs' included.
    last = refresh(client, first.get_json()["refresh"])
    assert last.status_code == 200  # within the grace of its own first use
    out = client.post(
        "/api/auth/logout/", json={"refresh": old}, headers=bearer(last.get_json()["access"])
    )
    assert out.status_code == 204
    for pair in (first.get_json(), second.get_json(), last.get_json()):
        assert me(client, pair["access"]) == 401
        assert refresh(client, pair["refresh"]).status_code == 401


def test_reuse_after_the_grace_ends_the_session(make_app, intern):
    client = make_app(JWT_REFRESH_REUSE_GRACE_SECONDS=1).test_client()
    old = intern.tokens["refresh"]
    pair = refresh(client, old).get_json()
    assert refresh(client, old).status_code == 200  # within the second
    time.sleep(1.2)
    replay = refresh(client, old)
    assert replay.status_code == 401 and replay.get_json() == INVALID_REFRESH
    assert me(client, pair["access"]) == 401
    assert me(client, intern.tokens["access"]) == 401


def test_a_zero_grace_is_strict_rotation(make_app, intern):
    client = make_app(JWT_REFRESH_REUSE_GRACE_SECONDS=0).test_client()
    old = intern.tokens["refresh"]
    pair = refresh(client, old).get_json()
    assert refresh(client, old).get_json() == INVALID_REFRESH
    assert me(client, pair["access"]) == 401


@only_postgresql
def test_concurrent_uses_of_one_refresh_token_all_get_a_pair(make_app, intern):
    """Racing tabs: the uses that lose the race to revoke the token are within the
    grace by definition, so each gets a pair."""
    app = make_app()
    token = intern.tokens["refresh"]

    def use(_):
        return refresh(app.test_client(), token)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(use, range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.get_json() for a in answers]
    assert all(me(app.test_client(), a.get_json()["access"]) == 200 for a in answers)


def test_without_rotation_refresh_answers_access_only_like_simplejwt(make_app, intern):
    client = make_app(JWT_ROTATE_REFRESH_TOKENS=False).test_client()
    token = intern.tokens["refresh"]
    for _ in range(3):
        answer = refresh(client, token)
        assert answer.status_code == 200
        assert set(answer.get_json()) == {"access"}
        assert me(client, answer.get_json()["access"]) == 200
    out = client.post("/api/auth/logout/", json={"refresh": token}, headers=intern.headers)
    assert out.status_code == 204
    assert refresh(client, token).get_json() == INVALID_REFRESH
    assert me(client, answer.get_json()["access"]) == 401


def test_without_rotation_an_expired_refresh_token_is_refused(make_app, intern):
    from datetime import timedelta

    client = make_app(
        JWT_ROTATE_REFRESH_TOKENS=False, JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=1)
    ).test_client()
    token = login(client, "intern")["refresh"]
    assert refresh(client, token).status_code == 200
    time.sleep(2.1)
    assert refresh(client, token).get_json() == INVALID_REFRESH


def test_the_settings_come_from_the_environment(make_app, intern, monkeypatch):
    monkeypatch.setenv("JWT_ROTATE_REFRESH_TOKENS", "false")
    client = make_app().test_client()
    assert set(refresh(client, intern.tokens["refresh"]).get_json()) == {"access"}
    monkeypatch.setenv("JWT_ROTATE_REFRESH_TOKENS", "true")
    monkeypatch.setenv("JWT_REFRESH_REUSE_GRACE_SECONDS", "0")
    client = make_app().test_client()
    token = login(client, "intern")["refresh"]
    assert refresh(client, token).status_code == 200
    assert refresh(client, token).status_code == 401


def test_a_bad_setting_stops_the_app(make_app, monkeypatch):
    import pytest

    for name, value in (
        ("JWT_ROTATE_REFRESH_TOKENS", "maybe"),
        ("JWT_REFRESH_REUSE_GRACE_SECONDS", "-1"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=name):
            make_app()
        monkeypatch.delenv(name)
