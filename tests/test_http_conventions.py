"""Error shapes, content types, trailing slashes, size limits, security headers."""

import pytest


def test_unknown_route_is_json_404(client):
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.get_json() == {"detail": "Not found."}


def test_wrong_method_is_json_405(client, admin):
    response = client.delete("/api/tasks/", headers=admin.headers)
    assert response.status_code == 405
    assert set(response.get_json()) == {"detail"}
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400_with_detail(client, admin):
    response = client.post(
        "/api/tasks/", data="{not json", content_type="application/json", headers=admin.headers
    )
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith("JSON parse error")


def test_wrong_content_type_is_415(client, admin):
    response = client.post(
        "/api/tasks/", data="title=x", content_type="text/plain", headers=admin.headers
    )
    assert response.status_code == 415
    assert response.get_json() == {"detail": 'Unsupported media type "text/plain" in request.'}


def test_body_over_one_mib_is_413(client, admin):
    body = '{"title": "' + "x" * (1024 * 1024) + '"}'
    response = client.post(
        "/api/tasks/", data=body, content_type="application/json", headers=admin.headers
    )
    assert response.status_code == 413
    assert set(response.get_json()) == {"detail"}


def test_unknown_body_field_is_400_naming_it(client, admin):
    response = client.post(
        "/api/tasks/", json={"title": "x", "is_admin": True}, headers=admin.headers
    )
    assert response.status_code == 400
    assert response.get_json() == {"is_admin": ["Unknown field."]}


def test_body_that_is_not_an_object_is_400(client, admin):
    response = client.post("/api/tasks/", json=["title"], headers=admin.headers)
    assert response.status_code == 400
    assert "non_field_errors" in response.get_json()


@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/", "/api/auth/me", "/api/auth/me/"])
def test_paths_work_with_and_without_trailing_slash(client, admin, path):
    response = client.get(path, headers=admin.headers)
    assert response.status_code == 200


def test_security_headers_on_every_answer(client, admin):
    for response in (
        client.get("/api/tasks/", headers=admin.headers),
        client.get("/api/nothing/"),
        client.get("/healthz"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "Server" not in response.headers


def test_no_cors_headers_by_default(client, admin):
    response = client.get(
        "/api/tasks/", headers={**admin.headers, "Origin": "https://evil.example"}
    )
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
