"""Sessions and trust: Host header, the docs pages' policy, whole-string usernames, and
the append-only log on PostgreSQL."""

import re

import pytest
import sqlalchemy as sa
from helpers import only_postgresql


@pytest.mark.parametrize("path", ["/api/tasks/", "/api/auth/login/", "/healthz", "/api/docs/"])
def test_untrusted_host_is_a_400(api, admin, path):
    response = api.as_(admin).get(path, headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Host 'evil.example' is not trusted."}


def test_forged_host_never_reaches_links(api, admin, make_task):
    for n in range(2):
        make_task(admin, title=f"t{n}")
    forged = api.as_(admin).get("/api/tasks/?page_size=1", headers={"Host": "evil.test"})
    assert forged.status_code == 400
    created = api.as_(admin).post("/api/tasks/", json={"title": "x"}, headers={"Host": "evil.test"})
    assert created.status_code == 400 and "Location" not in created.headers


def test_configured_hosts_are_answered(make_app, admin):
    app = make_app(TRUSTED_HOSTS=["tasks.example.com"])
    client = app.test_client()
    ok = client.get("/healthz", headers={"Host": "tasks.example.com:8443"})
    assert ok.status_code == 200
    assert client.get("/healthz").status_code == 400  # localhost is no longer trusted


def _scripts(html: str) -> tuple[list[str], list[str]]:
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    external = re.findall(r'<script src="([^"]+)"', html)
    return inline, external


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_send_a_csp_that_lets_them_work(client, path):
    import base64
    import hashlib

    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in policy["script-src"]
    inline, external = _scripts(response.get_data(as_text=True))
    for body in inline:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]
    for src in external:
        if src.startswith("http"):
            origin = "/".join(src.split("/")[:3])
            assert origin in policy["script-src"].split()
        else:
            assert src.startswith("/") and "'self'" in policy["script-src"]
            assert client.get(src).status_code == 200
    assert "'self'" in policy["connect-src"]  # the page fetches /api/openapi.json


def test_username_must_match_as_a_whole(api, admin):
    for name in ("admin\n", "new\n", "x\ny"):
        body = {"username": name, "password": "long enough pw"}
        response = api.as_(admin).post("/api/users/", json=body)
        assert response.status_code == 400, name
        assert list(response.get_json()) == ["username"]
    users = api.as_(admin).get("/api/users/").get_json()
    assert [user["username"] for user in users["results"]] == ["admin"]


@only_postgresql
def test_truncate_of_the_log_is_refused(app, admin, make_task, sql):
    make_task(admin)
    with pytest.raises(sa.exc.DBAPIError, match="append-only: TRUNCATE refused"):
        sql("TRUNCATE activity_log")
    assert sql("SELECT count(*) FROM activity_log") == [(1,)]
