"""Error shapes, content types, trailing slashes, size limits, security headers."""

import pytest

from taskapp.models import Role


def test_unknown_route_is_json_404(client):
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.get_json() == {"detail": "Not found."}


def test_wrong_method_is_json_405(api, admin):
    response = api.as_(admin).delete("/api/tasks/")
    assert response.status_code == 405
    assert set(response.get_json()) == {"detail"}
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400_with_detail(api, admin):
    response = api.as_(admin).post("/api/tasks/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith("JSON parse error")


def test_wrong_content_type_is_415(api, admin):
    response = api.as_(admin).post("/api/tasks/", data="title=x", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json() == {"detail": 'Unsupported media type "text/plain" in request.'}


def test_body_over_one_mib_is_413(api, admin):
    body = '{"title": "' + "x" * (1024 * 1024) + '"}'
    response = api.as_(admin).post("/api/tasks/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert set(response.get_json()) == {"detail"}


def test_unknown_body_field_is_400_naming_it(api, admin):
    response = api.as_(admin).post("/api/tasks/", json={"title": "x", "is_admin": True})
    assert response.status_code == 400
    assert response.get_json() == {"is_admin": ["Unknown field."]}


def test_body_that_is_not_an_object_is_400(api, admin):
    response = api.as_(admin).post("/api/tasks/", json=["title"])
    assert response.status_code == 400
    assert "non_field_errors" in response.get_json()


@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/", "/api/auth/me", "/api/auth/me/"])
def test_paths_work_with_and_without_trailing_slash(api, admin, path):
    response = api.as_(admin).get(path)
    assert response.status_code == 200


def test_security_headers_on_every_answer(api, client, admin):
    for response in (
        api.as_(admin).get("/api/tasks/"),
        client.get("/api/nothing/"),
        client.get("/healthz"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "Server" not in response.headers


def test_no_cors_headers_by_default(api, admin):
    response = api.as_(admin).get("/api/tasks/", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_is_503_when_the_database_is_unreachable(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_requests_during_a_database_outage_get_503_not_500(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().post("/api/auth/login/", json={"username": "a", "password": "b"})
    assert response.status_code == 503
    assert set(response.get_json()) == {"detail"}


FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "tasks.example.com",
}


def test_forwarded_headers_ignored_unless_proxies_are_trusted(api, admin, make_task):
    for n in range(3):
        make_task(admin, title=f"t{n}")
    body = api.as_(admin).get("/api/tasks/?page_size=1", headers={**FORWARDED})
    assert body.get_json()["next"].startswith("http://localhost/")


def test_behind_a_trusted_proxy_links_and_client_address_follow_it(make_app):
    app = make_app(
        TRUSTED_PROXY_COUNT=1,
        FORWARDED_ALLOW_IPS=["127.0.0.1"],
        TRUSTED_HOSTS=["localhost", "tasks.example.com"],
    )
    client = app.test_client()
    from helpers import create_user, login

    create_user(app, "boss", role=Role.ADMIN)
    headers = {"Authorization": f"Bearer {login(client, 'boss')['access']}", **FORWARDED}
    for n in range(2):
        client.post("/api/tasks/", json={"title": f"t{n}"}, headers=headers)
    body = client.get("/api/tasks/?page_size=1", headers=headers).get_json()
    assert body["next"].startswith("https://tasks.example.com/api/tasks/")
    wrong = {"username": "boss", "password": "nope"}
    for _ in range(5):
        client.post("/api/auth/login/", json=wrong, headers=FORWARDED)
    assert client.post("/api/auth/login/", json=wrong, headers=FORWARDED).status_code == 429
    other_client = {**FORWARDED, "X-Forwarded-For": "198.51.100.9"}
    assert client.post("/api/auth/login/", json=wrong, headers=other_client).status_code == 401


def test_messages_of_list_items_are_strings_naming_the_item(api, intern):
    body = {"name": "bot", "scopes": ["tasks:read", "AAA"]}
    response = api.as_(intern).post("/api/auth/tokens/", json=body)
    assert response.status_code == 400
    [message] = response.get_json()["scopes"]
    assert message.startswith("1: ") and "tasks:read" in message
