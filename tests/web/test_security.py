"""Tests named after the OWASP API Security Top 10 (2023) risks that apply to taskapp.

Each behaviour is asserted in one place. Checks that belong to a feature live in its
module and are not repeated here: another user's task answers 404
(test_tasks_visibility), interns are refused the user admin (test_users), an INTERN
cannot assign to others or set OVERDUE (test_tasks_crud), forged and wrong-type tokens,
the login limit and password material in answers (test_auth), the body and page size
caps, security headers and CORS off by default (test_http_conventions,
test_tasks_listing). Here: what spans every route, and what no feature module covers."""

from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from helpers import forge_token

PROTECTED = [
    ("get", "/api/auth/me/"),
    ("post", "/api/auth/logout/"),
    ("get", "/api/users/"),
    ("post", "/api/users/"),
    ("get", "/api/users/1/"),
    ("patch", "/api/users/1/"),
    ("get", "/api/tasks/"),
    ("post", "/api/tasks/"),
    ("get", "/api/tasks/1/"),
    ("patch", "/api/tasks/1/"),
    ("put", "/api/tasks/1/"),
    ("delete", "/api/tasks/1/"),
    ("get", "/api/tasks/stats/"),
    ("get", "/api/activity-logs/"),
    ("get", "/api/activity-logs/1/"),
]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class TestAPI1BrokenObjectLevelAuthorization:
    @pytest.fixture
    def foreign(self, client, admin, other_intern, make_task):
        task = make_task(admin, title="not yours", assigned_to=other_intern.id)
        [entry] = client.get(
            f"/api/activity-logs/?task={task['id']}", headers=admin.headers
        ).get_json()["results"]
        return {"task": task["id"], "entry": entry["id"]}

    @pytest.mark.parametrize(
        ("method", "path"),
        [("get", "/api/activity-logs/{entry}/")],
    )
    def test_intern_gets_404_for_other_users_objects(
        self, client, intern, admin, foreign, method, path
    ):
        url = path.format(**foreign)
        response = getattr(client, method)(url, json={"title": "x"}, headers=intern.headers)
        assert response.status_code == 404
        assert getattr(client, method)(
            url, json={"title": "x"}, headers=admin.headers
        ).status_code in (200, 204)

    def test_intern_filters_cannot_widen_visibility(self, api, intern, other_intern, foreign):
        for query in (
            f"assigned_to={other_intern.id}",
            f"task={foreign['task']}",
            f"actor={other_intern.id}",
        ):
            for path in ("/api/tasks/", "/api/activity-logs/"):
                body = api.as_(intern).get(f"{path}?{query}").get_json()
                assert body.get("count", 0) == 0


class TestAPI2BrokenAuthentication:
    @pytest.mark.parametrize(("method", "path"), PROTECTED)
    def test_every_protected_route_needs_a_valid_token(self, client, intern, method, path):
        forged = [
            None,
            forge_token(intern.id, exp=datetime.now(UTC) - timedelta(seconds=5)),
            forge_token(intern.id, secret="someone-elses-secret-that-is-long-enough"),
            forge_token(intern.id, secret=None, algorithm="none"),
            intern.tokens["refresh"],
        ]
        for token in forged:
            headers = bearer(token) if token else {}
            response = getattr(client, method)(path, json={}, headers=headers)
            assert response.status_code == 401, (path, token)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_tampered_role_claim_is_refused(self, api, intern):
        header, _, signature = intern.tokens["access"].split(".")
        claims = pyjwt.decode(intern.tokens["access"], options={"verify_signature": False})
        claims["role"] = "ADMIN"
        fake_payload = pyjwt.encode(claims, "k" * 32).split(".")[1]
        tampered = ".".join([header, fake_payload, signature])
        assert api.as_(bearer(tampered)).get("/api/users/").status_code == 401


class TestAPI3BrokenObjectPropertyLevelAuthorization:
    def test_read_only_properties_cannot_be_set(self, api, admin, intern, make_task):
        task = make_task(intern)
        body = {
            "title": "x",
            "created_by": admin.id,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
            "completed_at": "2000-01-01T00:00:00Z",
            "id": 999,
        }
        created = api.as_(intern).post("/api/tasks/", json=body).get_json()
        assert created["created_by"] == intern.id and created["completed_at"] is None
        assert not created["created_at"].startswith("2000") and created["id"] != 999
        patched = api.as_(intern).patch(api.task(task["id"]), json=body)
        assert patched.get_json()["created_by"] == intern.id


class TestAPI4UnrestrictedResourceConsumption:
    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("/api/tasks/", {"title": "x" * 201}, "title"),
            ("/api/tasks/", {"title": "x", "description": "d" * 10_001}, "description"),
            ("/api/auth/login/", {"username": "u" * 151, "password": "p"}, "username"),
            ("/api/auth/login/", {"username": "u", "password": "p" * 1025}, "password"),
        ],
    )
    def test_long_strings_are_refused_before_work_is_done(self, api, admin, path, body, field):
        response = api.as_(admin).post(path, json=body)
        assert response.status_code == 400 and field in response.get_json()

    def test_long_search_is_refused(self, api, admin):
        response = api.as_(admin).get("/api/tasks/?search=" + "a" * 201)
        assert response.status_code == 400


class TestAPI3MassAssignment:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("post", "/api/tasks/", {"title": "x", "version": 99}),
            (
                "post",
                "/api/users/",
                {"username": "n", "password": "long enough pw", "password_hash": "x"},
            ),
            ("post", "/api/auth/login/", {"username": "a", "password": "b", "role": "ADMIN"}),
        ],
    )
    def test_unknown_fields_are_refused(self, client, admin, method, path, body):
        response = getattr(client, method)(path, json=body, headers=admin.headers)
        assert response.status_code == 400
        unknown = set(body) - {"title", "username", "password"}
        assert unknown <= set(response.get_json())

    def test_unknown_fields_on_updates(self, api, admin, intern, make_task):
        task = make_task(intern)
        for url, body in (
            (api.task(task["id"]), {"version": 1}),
            (f"/api/users/{intern.id}/", {"token_version": 5}),
        ):
            response = api.as_(admin).patch(url, json=body)
            assert response.status_code == 400


class TestAPI8SecurityMisconfiguration:
    def test_cors_for_configured_origins_only(self, make_app):
        client = make_app(CORS_ORIGINS="https://app.example.com").test_client()
        allowed = client.get("/api/tasks/", headers={"Origin": "https://app.example.com"})
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        other = client.get("/api/tasks/", headers={"Origin": "https://evil.example.com"})
        assert "Access-Control-Allow-Origin" not in other.headers

    def test_errors_never_leak_traces(self, api, admin):
        response = api.as_(admin).post("/api/tasks/", data="{", content_type="application/json")
        assert "Traceback" not in response.get_data(as_text=True)


class TestAPI9ImproperInventoryManagement:
    def test_every_api_route_is_documented(self, app, client):
        spec = client.get("/api/openapi.json").get_json()
        documented = {path.replace("{", "<").replace("}", ">") for path in spec["paths"]}
        for rule in app.url_map.iter_rules():
            path = str(rule.rule)
            if (
                path.startswith("/api/")
                and path != "/api/"  # the index of links to the docs and the endpoints
                and not path.startswith(("/api/docs", "/api/redoc", "/api/openapi"))
            ):
                normalized = path.replace(f"int(min=1, max={2**31 - 1}):", "")
                assert normalized in documented, path
