"""Personal access tokens through the HTTP API and the CLI: creation, scopes, revocation,
ending with the owner, hash-only storage, last_used_at, the per-token rate limit."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from helpers import PASSWORD

from taskapp.models import Role

TOKENS = "/api/auth/tokens/"
ALL_SCOPES = [
    "tasks:read",
    "tasks:write",
    "logs:read",
    "webhooks:read",
    "webhooks:write",
    "users:read",
    "users:write",
]


def make_token(client, person, scopes, name="script", **fields) -> dict:
    response = client.post(
        TOKENS, json={"name": name, "scopes": scopes, **fields}, headers=person.headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def bearer(token: dict) -> dict:
    return {"Authorization": f"Bearer {token['token']}"}


def test_create_shows_the_secret_once_and_lists_without_it(client, intern):
    created = make_token(client, intern, ["tasks:read", "logs:read"], name="ci")
    assert created["token"].startswith("tap_") and len(created["token"]) > 40
    assert set(created) == {
        "id",
        "name",
        "scopes",
        "owner",
        "created_at",
        "expires_at",
        "last_used_at",
        "token",
    }
    assert created["scopes"] == ["tasks:read", "logs:read"]
    assert created["owner"] == intern.id and created["last_used_at"] is None
    listed = client.get(TOKENS, headers=intern.headers).get_json()
    assert listed["count"] == 1
    [item] = listed["results"]
    assert "token" not in item and item["id"] == created["id"]


def test_the_database_holds_only_a_hash(client, intern, sql):
    created = make_token(client, intern, ["tasks:read"])
    rows = sql("SELECT * FROM personal_access_token")
    assert len(rows) == 1
    secret = created["token"]
    for value in rows[0]:
        text = value.hex() if isinstance(value, bytes | memoryview) else str(value)
        as_bytes = bytes(value) if isinstance(value, bytes | memoryview) else b""
        assert secret not in text and secret[4:] not in text
        assert secret.encode() not in as_bytes


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["tasks:delete"]}, "scopes"),
        ({"name": "x", "scopes": ["tasks:read", "tasks:read"]}, "scopes"),
        ({"name": "", "scopes": ["tasks:read"]}, "name"),
        ({"scopes": ["tasks:read"]}, "name"),
        (
            {"name": "x", "scopes": ["tasks:read"], "expires_at": "2001-01-01T00:00:00Z"},
            "expires_at",
        ),
        ({"name": "x", "scopes": ["tasks:read"], "expires_at": "soon"}, "expires_at"),
        ({"name": "x", "scopes": ["tasks:read"], "owner": 1}, "owner"),
    ],
)
def test_bad_creation_is_a_400_on_the_field(client, intern, body, field, sql):
    response = client.post(TOKENS, json=body, headers=intern.headers)
    assert response.status_code == 400
    assert field in response.get_json()
    assert sql("SELECT count(*) FROM personal_access_token")[0][0] == 0


def test_user_scopes_are_for_admins_only(client, intern, admin):
    refused = client.post(
        TOKENS, json={"name": "x", "scopes": ["users:read"]}, headers=intern.headers
    )
    assert refused.status_code == 403
    assert refused.get_json() == {"detail": "Tokens of INTERN users cannot hold: users:read."}
    assert make_token(client, admin, ALL_SCOPES)["scopes"] == ALL_SCOPES


OPERATIONS = [
    ("get", "/api/tasks/", "tasks:read"),
    ("get", "/api/tasks/stats/", "tasks:read"),
    ("get", "/api/tasks/{task}/", "tasks:read"),
    ("post", "/api/tasks/", "tasks:write"),
    ("patch", "/api/tasks/{task}/", "tasks:write"),
    ("put", "/api/tasks/{task}/", "tasks:write"),
    ("delete", "/api/tasks/{task}/", "tasks:write"),
    ("get", "/api/activity-logs/", "logs:read"),
    ("get", "/api/activity-logs/{entry}/", "logs:read"),
    ("get", "/api/users/", "users:read"),
    ("get", "/api/users/{user}/", "users:read"),
    ("post", "/api/users/", "users:write"),
    ("patch", "/api/users/{user}/", "users:write"),
]
BODIES = {
    ("post", "/api/tasks/"): {"title": "by token"},
    ("patch", "/api/tasks/{task}/"): {"priority": "HIGH"},
    ("put", "/api/tasks/{task}/"): {"title": "replaced"},
    ("post", "/api/users/"): {"username": "newbie", "password": PASSWORD},
    ("patch", "/api/users/{user}/"): {"email": "new@example.com"},
}


@pytest.mark.parametrize("scope", ALL_SCOPES)
def test_each_scope_allows_exactly_its_operations(client, admin, intern, make_task, scope):
    token = make_token(client, admin, [scope])
    for method, template, needed in OPERATIONS:
        task = make_task(admin, title="target")
        entry = client.get(f"/api/activity-logs/?task={task['id']}", headers=admin.headers)
        ids = {"task": task["id"], "entry": entry.get_json()["results"][0]["id"]}
        url = template.format(user=intern.id, **ids)
        body = BODIES.get((method, template))
        if body and "username" in body:
            body = {**body, "username": f"u{task['id']}"}
        kwargs = {"json": body} if body is not None else {}
        response = getattr(client, method)(url, headers=bearer(token), **kwargs)
        if needed == scope:
            assert response.status_code in (200, 201, 204), (method, url, response.get_json())
        else:
            assert response.status_code == 403, (method, url, scope)
            assert response.get_json() == {
                "detail": "You do not have permission to perform this action."
            }


def test_a_token_acts_as_its_owner_with_the_owners_role(client, intern, other_intern, make_task):
    mine = make_task(intern, title="mine")
    theirs = make_task(other_intern, title="theirs")
    token = make_token(client, intern, ["tasks:read", "tasks:write", "logs:read"])
    listed = client.get("/api/tasks/", headers=bearer(token)).get_json()
    assert [t["id"] for t in listed["results"]] == [mine["id"]]
    assert client.get(f"/api/tasks/{theirs['id']}/", headers=bearer(token)).status_code == 404
    created = client.post("/api/tasks/", json={"title": "t"}, headers=bearer(token))
    assert created.get_json()["created_by"] == intern.id
    log = client.get(f"/api/activity-logs/?task={created.get_json()['id']}", headers=bearer(token))
    assert log.get_json()["results"][0]["actor"] == intern.id
    assert log.get_json()["results"][0]["source"] == "api"
    me = client.get("/api/auth/me/", headers=bearer(token))
    assert me.status_code == 200 and me.get_json()["id"] == intern.id


def test_a_token_cannot_manage_tokens_log_out_or_change_a_password(client, admin, intern):
    token = make_token(client, admin, ALL_SCOPES)
    other = make_token(client, admin, ["tasks:read"])
    headers = bearer(token)
    refused = [
        client.get(TOKENS, headers=headers),
        client.post(TOKENS, json={"name": "x", "scopes": ["tasks:read"]}, headers=headers),
        client.delete(f"{TOKENS}{other['id']}/", headers=headers),
        client.get("/api/auth/token-events/", headers=headers),
        client.post(
            "/api/auth/logout/", json={"refresh": admin.tokens["refresh"]}, headers=headers
        ),
        client.patch(f"/api/users/{intern.id}/", json={"password": "x" * 12}, headers=headers),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert client.get("/api/auth/me/", headers=bearer(other)).status_code == 200
    changed = client.patch(f"/api/users/{intern.id}/", json={"email": "i@x.org"}, headers=headers)
    assert changed.status_code == 200


def test_revocation_is_immediate_and_audited(client, admin, intern):
    token = make_token(client, intern, ["tasks:read"], name="cron")
    assert client.get("/api/tasks/", headers=bearer(token)).status_code == 200
    assert client.delete(f"{TOKENS}{token['id']}/", headers=intern.headers).status_code == 204
    after = client.get("/api/tasks/", headers=bearer(token))
    assert after.status_code == 401
    assert after.get_json() == {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
    }
    assert after.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(TOKENS, headers=intern.headers).get_json()["count"] == 0
    events = client.get("/api/auth/token-events/", headers=admin.headers).get_json()["results"]
    assert [(e["action"], e["token"], e["token_name"]) for e in events] == [
        ("REVOKED", token["id"], "cron"),
        ("CREATED", token["id"], "cron"),
    ]
    assert all(e["actor"] == intern.id and e["owner"] == intern.id for e in events)
    assert all(e["source"] == "api" for e in events)
    assert client.get("/api/auth/token-events/", headers=intern.headers).status_code == 403


def test_only_the_owner_or_an_admin_revokes(client, admin, intern, other_intern):
    token = make_token(client, intern, ["tasks:read"])
    url = f"{TOKENS}{token['id']}/"
    assert client.delete(url, headers=other_intern.headers).status_code == 404
    assert client.get("/api/tasks/", headers=bearer(token)).status_code == 200
    assert client.delete(url, headers=admin.headers).status_code == 204
    assert client.get("/api/tasks/", headers=bearer(token)).status_code == 401
    events = client.get("/api/auth/token-events/", headers=admin.headers).get_json()["results"]
    assert events[0]["actor"] == admin.id and events[0]["owner"] == intern.id


def test_listing_other_users_tokens_is_for_admins(client, admin, intern, other_intern):
    mine = make_token(client, intern, ["tasks:read"])
    theirs = make_token(client, other_intern, ["tasks:read"])
    everyone = client.get(f"{TOKENS}?all=true", headers=admin.headers).get_json()
    assert {t["id"] for t in everyone["results"]} == {mine["id"], theirs["id"]}
    one = client.get(f"{TOKENS}?user={intern.id}", headers=admin.headers).get_json()
    assert [t["id"] for t in one["results"]] == [mine["id"]]
    assert "token" not in everyone["results"][0]
    assert client.get(f"{TOKENS}?all=true", headers=intern.headers).status_code == 403
    assert client.get(f"{TOKENS}?user={other_intern.id}", headers=intern.headers).status_code == 403
    own = client.get(f"{TOKENS}?user={intern.id}", headers=intern.headers).get_json()
    assert [t["id"] for t in own["results"]] == [mine["id"]]


@pytest.mark.parametrize(
    "change", [{"is_active": False}, {"role": "ADMIN"}, {"password": "another password"}]
)
def test_owner_changes_end_their_tokens(client, admin, intern, change):
    token = make_token(client, intern, ["tasks:read"])
    assert client.get("/api/tasks/", headers=bearer(token)).status_code == 200
    patched = client.patch(f"/api/users/{intern.id}/", json=change, headers=admin.headers)
    assert patched.status_code == 200
    assert client.get("/api/tasks/", headers=bearer(token)).status_code == 401
    listed = client.get(f"{TOKENS}?user={intern.id}", headers=admin.headers).get_json()
    assert listed["count"] == 0


def test_expired_and_unknown_tokens_are_401(client, intern, sql):
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    token = make_token(client, intern, ["tasks:read"], expires_at=soon)
    assert token["expires_at"] is not None
    assert client.get("/api/tasks/", headers=bearer(token)).status_code == 200
    sql(
        "UPDATE personal_access_token SET expires_at = :past",
        past=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert client.get("/api/tasks/", headers=bearer(token)).status_code == 401
    for forged in ("tap_", "tap_" + "A" * 43, token["token"] + "x", "tap_\u00e9"):
        response = client.get("/api/tasks/", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, forged
        assert response.get_json()["detail"] == "Given token not valid for any token type"


def test_last_used_at_is_written_at_most_once_a_minute(client, intern, sql, count_queries):
    token = make_token(client, intern, ["tasks:read"])
    headers = bearer(token)
    client.get("/api/tasks/stats/", headers=headers)
    [(first,)] = sql("SELECT last_used_at FROM personal_access_token")
    assert first is not None
    with count_queries() as statements:
        client.get("/api/tasks/stats/", headers=headers)
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert sql("SELECT last_used_at FROM personal_access_token")[0][0] == first
    listed = client.get(TOKENS, headers=intern.headers).get_json()["results"][0]
    assert listed["last_used_at"] is not None
    sql(
        "UPDATE personal_access_token SET last_used_at = :old",
        old=datetime.now(UTC) - timedelta(minutes=2),
    )
    client.get("/api/tasks/stats/", headers=headers)
    [(later,)] = sql("SELECT last_used_at FROM personal_access_token")
    assert _aware(later) > datetime.now(UTC) - timedelta(minutes=1)


def _aware(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_a_token_costs_the_same_queries_as_a_jwt(client, intern, count_queries):
    token = make_token(client, intern, ["tasks:read"])
    client.get("/api/tasks/stats/", headers=bearer(token))  # stamps last_used_at
    with count_queries() as with_jwt:
        assert client.get("/api/tasks/stats/", headers=intern.headers).status_code == 200
    with count_queries() as with_token:
        assert client.get("/api/tasks/stats/", headers=bearer(token)).status_code == 200
    assert len(with_token) == len(with_jwt)


def test_each_token_is_rate_limited(make_app):
    from helpers import Person, create_user

    app = make_app(PAT_RATE_LIMIT="3 per minute")
    client = app.test_client()
    person = Person(client, create_user(app, "bot"), "bot", Role.INTERN)
    first = make_token(client, person, ["tasks:read"])
    second = make_token(client, person, ["tasks:read"])
    statuses = [client.get("/api/tasks/", headers=bearer(first)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = client.get("/api/tasks/stats/", headers=bearer(first))
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.get_json()["detail"].startswith("Request was throttled.")
    assert client.get("/api/tasks/", headers=bearer(second)).status_code == 200
    assert client.get("/api/tasks/", headers=person.headers).status_code == 200


def test_rate_limit_counts_in_redis(make_app, redis_url):
    from helpers import Person, create_user

    app = make_app(PAT_RATE_LIMIT="2 per minute", RATELIMIT_STORAGE_URI=redis_url)
    client = app.test_client()
    person = Person(client, create_user(app, "bot"), "bot", Role.INTERN)
    token = make_token(client, person, ["tasks:read"])
    statuses = [client.get("/api/tasks/", headers=bearer(token)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    counters = redis.Redis.from_url(redis_url).keys("*personal-token*")
    assert len(counters) == 1  # one fixed-window counter for the token, shared by processes


def test_token_is_served_again_after_retry_after(make_app):
    """A fixed window: once it ends (``Retry-After`` says when), the token is counted
    afresh; the counter in process memory expires without a timer thread."""
    from helpers import Person, create_user

    app = make_app(PAT_RATE_LIMIT="1 per second")
    client = app.test_client()
    person = Person(client, create_user(app, "bot"), "bot", Role.INTERN)
    token = make_token(client, person, ["tasks:read"])
    for _ in range(3):  # three windows in a row
        while (answer := client.get("/api/tasks/", headers=bearer(token))).status_code == 200:
            pass
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "1"
        time.sleep(1.05)
        assert client.get("/api/tasks/", headers=bearer(token)).status_code == 200


def test_cli_lists_and_revokes_tokens(client, runner, intern, admin):
    token = make_token(client, intern, ["tasks:read"], name="nightly")
    listed = runner.invoke(args=["users", "tokens", "intern"])
    assert listed.exit_code == 0
    assert f"{token['id']}\tnightly\ttasks:read" in listed.output
    assert token["token"] not in listed.output
    revoked = runner.invoke(args=["users", "revoke-token", str(token["id"])])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/api/tasks/", headers=bearer(token)).status_code == 401
    events = client.get("/api/auth/token-events/", headers=admin.headers).get_json()["results"]
    assert (events[0]["action"], events[0]["source"], events[0]["actor"]) == (
        "REVOKED",
        "cli",
        None,
    )
    missing = runner.invoke(args=["users", "revoke-token", "999"])
    assert missing.exit_code != 0 and "no personal access token" in missing.output


def test_purge_drops_dead_tokens_only(app, client, admin, intern, sql):
    from taskapp.auth import personal_tokens
    from taskapp.extensions import db
    from taskapp.models import utcnow

    live = make_token(client, intern, ["tasks:read"])
    ended = make_token(client, admin, ["tasks:read"])
    client.patch(f"/api/users/{admin.id}/", json={"email": "a@b.org"}, headers=admin.headers)
    sql("UPDATE user_account SET token_version = token_version + 1 WHERE id = :id", id=admin.id)
    with app.app_context():
        assert personal_tokens.purge_dead(db.session, utcnow()) == 1
        db.session.commit()
    assert [row[0] for row in sql("SELECT id FROM personal_access_token")] == [live["id"]]
    assert ended["id"] != live["id"]


def test_openapi_states_the_scope_of_every_operation(client):
    spec = client.get("/api/openapi.json").get_json()
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["scheme"] == "bearer" and "tap_" in scheme["description"]
    paths = spec["paths"]
    expected = {
        ("get", "/api/tasks/"): "tasks:read",
        ("post", "/api/tasks/"): "tasks:write",
        ("get", "/api/tasks/stats/"): "tasks:read",
        ("get", "/api/tasks/{task_id}/"): "tasks:read",
        ("patch", "/api/tasks/{task_id}/"): "tasks:write",
        ("put", "/api/tasks/{task_id}/"): "tasks:write",
        ("delete", "/api/tasks/{task_id}/"): "tasks:write",
        ("get", "/api/activity-logs/"): "logs:read",
        ("get", "/api/activity-logs/{entry_id}/"): "logs:read",
        ("get", "/api/users/"): "users:read",
        ("post", "/api/users/"): "users:write",
        ("get", "/api/users/{user_id}/"): "users:read",
        ("patch", "/api/users/{user_id}/"): "users:write",
    }
    for (method, path), scope in expected.items():
        operation = paths[path][method]
        assert operation["x-required-scope"] == scope, (method, path)
        assert scope in operation["description"]
        assert "403" in operation["responses"] and "429" in operation["responses"]
    for method, path in [
        ("get", "/api/auth/tokens/"),
        ("post", "/api/auth/tokens/"),
        ("delete", "/api/auth/tokens/{token_id}/"),
        ("get", "/api/auth/token-events/"),
        ("post", "/api/auth/logout/"),
    ]:
        assert paths[path][method]["x-personal-tokens"] is False, (method, path)
    assert "x-required-scope" not in paths["/api/auth/me/"]["get"]
    idempotency = [p for p in paths["/api/tasks/"]["post"]["parameters"] if p["in"] == "header"]
    assert idempotency[0]["name"] == "Idempotency-Key"


def test_rate_limit_falls_back_to_memory_when_redis_is_down(make_app, caplog):
    from helpers import Person, create_user

    app = make_app(PAT_RATE_LIMIT="2 per minute", RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    client = app.test_client()
    person = Person(client, create_user(app, "bot"), "bot", Role.INTERN)
    token = make_token(client, person, ["tasks:read"])
    statuses = [client.get("/api/tasks/", headers=bearer(token)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert "counting personal tokens in memory" in caplog.text
