"""Host and webhook URL checks that say what is wrong, and no HTML from the application:
OPTIONS, merged slashes and every error werkzeug can raise answer JSON (or nothing)."""

import re

import pytest

from taskapp.web.docs import REDOC_ASSETS_PATH

REDOC_JS = REDOC_ASSETS_PATH + "/redoc.standalone.js"

# Item 11: trusted hosts match case-insensitively.


@pytest.mark.parametrize("host", ["LOCALHOST", "LocalHost:5000", "127.0.0.1:8000"])
def test_a_trusted_host_matches_whatever_its_case(client, intern, host):
    response = client.get("/api/auth/me/", headers={**intern.headers, "Host": host})
    assert response.status_code == 200, response.get_json()


def test_configured_trusted_hosts_match_whatever_their_case(make_app, monkeypatch):
    monkeypatch.setenv("TRUSTED_HOSTS", "API.Example.COM,.Tasks.Example.ORG")
    client = make_app().test_client()
    for host in (
        "api.example.com",
        "API.EXAMPLE.COM",
        "eu.tasks.example.org",
        "EU.TASKS.Example.org",
    ):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("example.com", "EVIL.COM", "api.example.com.evil.com"):
        refused = client.get("/healthz", headers={"Host": host})
        assert refused.status_code == 400 and "not trusted" in refused.get_json()["detail"]


# Item 11: webhook URLs.


def post_hook(client, person, url):
    return client.post("/api/webhooks/", json={"url": url}, headers=person.headers)


@pytest.mark.parametrize(
    "url", ["HTTP://example.com/hook", "HTTPS://example.com/hook", "Http://Example.COM:8080/x"]
)
def test_an_upper_case_scheme_is_valid(client, intern, url):
    response = post_hook(client, intern, url)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["url"] == url


@pytest.mark.parametrize(
    "url,words",
    [
        ("http://example.com:0/hook", "port"),
        ("https://example.com:00/hook", "port"),
        ("http://example.com:65536/hook", "port"),
        ("http://example.com:http/hook", "port"),
        ("http://exa mple.com/hook", "space"),
        ("http://example.com/ho\tok", "space"),
        ("ftp://example.com/hook", "http or https"),
        ("HTTPX://example.com/hook", "http or https"),
        ("example.com/hook", "http or https"),
        ("http:///hook", "host"),
        ("http://exa_mple.com/hook", "host"),
        ("http://ex\u00e9.com/hook", "ASCII"),
        ("http://example.com/caf\u00e9", "ASCII"),
    ],
)
def test_a_refused_url_says_what_is_wrong(client, intern, sql, url, words):
    response = post_hook(client, intern, url)
    assert response.status_code == 400
    messages = response.get_json()["url"]
    assert len(messages) == 1 and words in messages[0], messages
    if words != "ASCII":
        assert "ASCII" not in messages[0]
    assert sql("SELECT count(*) FROM webhook") == [(0,)]


def test_a_url_is_checked_the_same_on_patch(client, intern):
    hook = post_hook(client, intern, "https://example.com/hook").get_json()
    url = f"/api/webhooks/{hook['id']}/"
    refused = client.patch(url, json={"url": "http://example.com:0/"}, headers=intern.headers)
    assert refused.status_code == 400 and "port" in refused.get_json()["url"][0]
    fine = client.patch(url, json={"url": "HTTPS://example.com/b"}, headers=intern.headers)
    assert fine.status_code == 200


# Item 12: no HTML from the application.


def api_paths(app) -> list[str]:
    return sorted(
        {
            re.sub(r"<[^>]+>", "1", rule.rule)
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith(("/api/", "/healthz"))
        }
    )


def assert_not_html(response, where):
    body = response.get_data()
    if response.status_code in (204, 304) or not body:
        assert not body, where
        return
    assert response.mimetype == "application/json", (where, response.status_code, body[:200])
    assert response.get_json() is not None, where


def test_options_answers_allow_and_no_html_on_every_route(client, app, admin):
    paths = api_paths(app)
    assert len(paths) >= 20
    for path in paths:
        response = client.open(path, method="OPTIONS", headers=admin.headers)
        assert response.status_code == 204, (path, response.status_code)
        assert "OPTIONS" in response.headers["Allow"], path
        assert not response.get_data() and "text/html" not in response.headers.get(
            "Content-Type", ""
        ), path


def test_options_without_credentials_is_the_same(client):
    response = client.open("/api/tasks/", method="OPTIONS")
    assert response.status_code == 204
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST", "OPTIONS"}


def test_cors_preflight_still_works(make_app):
    client = make_app(CORS_ORIGINS="https://app.example.com").test_client()
    response = client.open(
        "/api/tasks/",
        method="OPTIONS",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert not response.get_data()


@pytest.mark.parametrize(
    "path", ["/api//tasks/", "/api//tasks", "/api/tasks//1/", "/api///auth/me/", "/healthz//"]
)
def test_merged_slashes_are_no_redirect(client, admin, path):
    """werkzeug used to answer 308 with an HTML body, to the path with slashes merged."""
    response = client.get(path, headers=admin.headers)
    assert response.status_code < 300 or response.status_code >= 400, (path, response.status_code)
    assert "Location" not in response.headers
    assert_not_html(response, path)
    if path.startswith("/api//"):
        assert response.status_code == 404


def test_every_werkzeug_error_the_app_can_reach_is_json(client, app, admin):
    big = b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    attempts = {
        "unknown path": client.get("/nope"),
        "unknown api path": client.get("/api/nope/", headers=admin.headers),
        "bad percent-encoding in path": client.get("/api/tasks/%FF/", headers=admin.headers),
        "method not allowed": client.put("/api/tasks/", headers=admin.headers),
        "unknown method": client.open("/api/tasks/", method="BREW", headers=admin.headers),
        "too large": client.post(
            "/api/tasks/", data=big, content_type="application/json", headers=admin.headers
        ),
        "unsupported media type": client.post(
            "/api/tasks/", data="x", content_type="text/plain", headers=admin.headers
        ),
        "untrusted host": client.get("/api/tasks/", headers={"Host": "evil.example"}),
        "malformed host": client.get("/api/tasks/", headers={"Host": "a b"}),
        "bad json": client.post(
            "/api/tasks/", data="{", content_type="application/json", headers=admin.headers
        ),
        "bad range on the docs' script": client.get(
            REDOC_JS, headers={"Range": "bytes=999999999-"}
        ),
        "bad if-match": client.patch(
            "/api/tasks/1/", json={}, headers={**admin.headers, "If-Match": '"0-0"'}
        ),
        "no credentials": client.get("/api/tasks/"),
    }
    for where, response in attempts.items():
        assert response.status_code >= 300 or where.startswith("bad range"), where
        assert_not_html(response, where)
    for path in api_paths(app):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            response = client.open(path, method=method, headers=admin.headers)
            if method != "HEAD" and response.status_code >= 300:
                assert_not_html(response, (method, path))
