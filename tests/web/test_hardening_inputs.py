"""Inputs that used to produce a 500: every one is a 4xx in the contract's shape."""

import http.client
import re
import threading

import pytest
from helpers import forge_token
from werkzeug.serving import make_server

DEEP_JSON = "[" * 1000 + "]" * 1000
HUGE_INT = '{"username": ' + "9" * 5000 + ', "password": "x"}'


def json_writes(app) -> list[tuple[str, str]]:
    """Every API route that takes a body, with its id placeholders filled in later."""
    return sorted(
        (method, re.sub(r"<[^>]+>", "{id}", rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods & {"POST", "PUT", "PATCH"}
        if rule.rule.startswith("/api/")
    )


def test_the_route_list_finds_the_json_writes(app):
    found = json_writes(app)
    assert ("POST", "/api/auth/login/") in found and ("PATCH", "/api/tasks/{id}/") in found
    assert len(found) >= 8


@pytest.mark.parametrize("body", [DEEP_JSON, HUGE_INT], ids=["deep", "huge-int"])
def test_unparsable_json_is_a_400_on_every_json_endpoint(client, app, admin, body):
    """Unauthenticated (login included) and authenticated, on every route with a body."""
    for method, path in json_writes(app):
        for headers in ({}, admin.headers):
            response = client.open(
                path.format(id=admin.id),
                method=method,
                data=body,
                content_type="application/json",
                headers=headers,
            )
            assert response.status_code == 400, (method, path, response.get_data(as_text=True))
            assert response.get_json()["detail"].startswith("JSON parse error")


@pytest.mark.parametrize(
    "method,path", [("post", "/api/users/"), ("patch", "/api/users/{id}/")], ids=["post", "patch"]
)
def test_lone_surrogate_in_email_is_a_400(client, admin, intern, method, path, sql):
    body = '{"username": "surro", "password": "long enough pw", "email": "a@x\\ud800.io"}'
    if method == "patch":
        body = '{"email": "a@x\\ud800.io"}'
    response = client.open(
        path.format(id=intern.id),
        method=method.upper(),
        data=body,
        content_type="application/json",
        headers=admin.headers,
    )
    assert response.status_code == 400
    assert list(response.get_json()) == ["email"]
    assert sql("SELECT email FROM user_account WHERE id = :id", id=intern.id) == [
        ("intern@example.com",)
    ]


@pytest.mark.parametrize("sub", ["abc", "99999999999999999999", "-1", "1.5", ""])
def test_token_with_a_sub_that_is_no_user_id_is_a_401(client, intern, sub):
    token = forge_token(intern.id, sub=sub)
    response = client.get("/api/auth/me/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json()["detail"]


def test_refresh_token_with_a_bad_sub_is_a_401(client, intern):
    token = forge_token(intern.id, sub="99999999999999999999", type="refresh")
    response = client.post("/api/auth/refresh/", json={"refresh": token})
    assert response.status_code == 401


@pytest.fixture
def live_server(app):
    """The app behind werkzeug's threaded server on a free port (real HTTP, chunked)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join()


def _send(port: int, headers: dict, chunks: list[bytes]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/api/tasks/", skip_host=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        for chunk in chunks:
            conn.send(chunk)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _chunked(payload: bytes, size: int = 64 * 1024) -> list[bytes]:
    parts = [payload[i : i + size] for i in range(0, len(payload), size)]
    return [b"%x\r\n%s\r\n" % (len(part), part) for part in parts] + [b"0\r\n\r\n"]


def test_chunked_body_over_the_limit_is_a_413_like_content_length(live_server, admin, sql):
    payload = b'{"title": "big", "description": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    base = {"Content-Type": "application/json", **admin.headers, "Host": "localhost"}
    status, _ = _send(live_server, {**base, "Content-Length": str(len(payload))}, [payload])
    assert status == 413
    status, body = _send(live_server, {**base, "Transfer-Encoding": "chunked"}, _chunked(payload))
    assert status == 413, body
    assert sql("SELECT count(*) FROM task") == [(0,)]
    small = b'{"title": "small"}'
    status, body = _send(live_server, {**base, "Transfer-Encoding": "chunked"}, _chunked(small))
    assert status == 201, body
