"""What a client written for the original DRF/SimpleJWT system relies on beyond paths
and JSON shapes: form-encoded bodies (DRF's default parsers take them), timestamps
written with ``Z``, and SimpleJWT's ``code`` on token errors."""

import re

import pytest
from helpers import PASSWORD

FORM = "application/x-www-form-urlencoded"
DRF_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def test_login_refresh_and_logout_accept_form_bodies(api, client, intern):
    pair = client.post(
        "/api/auth/login/", data={"username": "intern", "password": PASSWORD}, content_type=FORM
    )
    assert pair.status_code == 200, pair.get_json()
    tokens = pair.get_json()
    fresh = client.post("/api/auth/refresh/", data={"refresh": tokens["refresh"]})
    assert fresh.status_code == 200, fresh.get_json()
    tokens = fresh.get_json()
    bearer = {"Authorization": f"Bearer {tokens['access']}"}
    out = api.as_(bearer).post("/api/auth/logout/", data={"refresh": tokens["refresh"]})
    assert out.status_code == 204
    assert api.as_(bearer).get("/api/auth/me/").status_code == 401


def test_form_login_with_wrong_password_is_refused_like_json(client, intern):
    answer = client.post("/api/auth/login/", data={"username": "intern", "password": "nope"})
    assert answer.status_code == 401
    assert answer.get_json() == {"detail": "No active account found with the given credentials"}


def test_task_writes_accept_form_bodies(api, admin, intern, sql):
    created = api.as_(admin).post(
        "/api/tasks/",
        data={"title": "From a form", "priority": "HIGH", "assigned_to": str(intern.id)},
    )
    assert created.status_code == 201, created.get_json()
    task = created.get_json()
    assert (task["title"], task["priority"], task["assigned_to"]) == (
        "From a form",
        "HIGH",
        intern.id,
    )
    url = api.task(task["id"])
    put = api.as_(admin).put(url, data={"title": "Replaced", "due_date": "2026-12-01"})
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["due_date"] == "2026-12-01"
    patch = api.as_(admin).patch(url, data={"due_date": "", "status": "COMPLETED"})
    assert patch.status_code == 200, patch.get_json()
    assert patch.get_json()["due_date"] is None and patch.get_json()["status"] == "COMPLETED"
    rows = sql("SELECT title, due_date, status FROM task WHERE id = :id", id=task["id"])
    assert rows == [("Replaced", None, "COMPLETED")]


@pytest.mark.parametrize(
    ("form", "json"),
    [
        ({"description": "no title"}, {"description": "no title"}),
        ({"title": "  "}, {"title": "  "}),
        ({"title": "x", "owner": "1"}, {"title": "x", "owner": "1"}),
        ({"title": "x", "priority": "URGENT"}, {"title": "x", "priority": "URGENT"}),
        ({"title": "x", "status": "OVERDUE"}, {"title": "x", "status": "OVERDUE"}),
        ({"title": "x", "assigned_to": "0"}, {"title": "x", "assigned_to": 0}),
        ({"title": "x", "assigned_to": "999"}, {"title": "x", "assigned_to": 999}),
        ({"title": "x", "due_date": "tomorrow"}, {"title": "x", "due_date": "tomorrow"}),
    ],
)
def test_form_bodies_get_the_same_validation_as_json(api, admin, sql, form, json):
    as_form = api.as_(admin).post("/api/tasks/", data=form)
    as_json = api.as_(admin).post("/api/tasks/", json=json)
    assert as_form.status_code == as_json.status_code == 400, as_form.get_json()
    assert as_form.get_json() == as_json.get_json()
    assert sql("SELECT count(*) FROM task") == [(0,)]


def test_a_form_id_that_is_not_a_number_is_a_400(api, admin):
    answer = api.as_(admin).post("/api/tasks/", data={"title": "x", "assigned_to": "abc"})
    assert answer.status_code == 400
    assert answer.get_json() == {"assigned_to": ["Not a valid integer."]}


@pytest.mark.parametrize("mimetype", ["text/plain", "multipart/form-data", "application/xml"])
def test_other_body_types_are_still_415(api, admin, mimetype):
    answer = api.as_(admin).post("/api/tasks/", data="title=x", headers={"Content-Type": mimetype})
    assert answer.status_code == 415
    assert answer.get_json()["detail"].startswith("Unsupported media type")


def test_every_timestamp_the_api_writes_ends_in_z(api, admin, make_task):
    task = make_task(admin, title="Stamped")
    done = api.as_(admin).patch(api.task(task["id"]), json={"status": "COMPLETED"}).get_json()
    stamps = [done["created_at"], done["updated_at"], done["completed_at"]]
    listed = api.as_(admin).get("/api/tasks/").get_json()["results"][0]
    stamps += [listed["created_at"], listed["updated_at"], listed["completed_at"]]
    stamps.append(api.as_(admin).get("/api/auth/me/").get_json()["date_joined"])
    user = api.as_(admin).get(f"/api/users/{admin.id}/").get_json()
    stamps.append(user["date_joined"])
    entries = api.as_(admin).get("/api/activity-logs/").get_json()["results"]
    stamps += [entry["created_at"] for entry in entries]
    completed_change = next(e for e in entries if "completed_at" in e["changes"])
    stamps.append(completed_change["changes"]["completed_at"]["to"])
    hook = (
        api.as_(admin)
        .post("/api/webhooks/", json={"url": "https://hooks.example.com/in"})
        .get_json()
    )
    stamps.append(hook["created_at"])
    api.as_(admin).post(f"/api/webhooks/{hook['id']}/ping/")
    deliveries = api.as_(admin).get(f"/api/webhooks/{hook['id']}/deliveries/")
    stamps += [delivery["created_at"] for delivery in deliveries.get_json()["results"]]
    tokens = (
        api.as_(admin)
        .post("/api/auth/tokens/", json={"name": "t", "scopes": ["tasks:read"]})
        .get_json()
    )
    stamps.append(tokens["created_at"])
    for stamp in stamps:
        assert DRF_TIMESTAMP.match(stamp), stamp


def test_token_errors_carry_simplejwt_codes(client, intern):
    bad = client.get("/api/auth/me/", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    assert bad.get_json() == {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
    }
    refresh = client.post("/api/auth/refresh/", json={"refresh": "not.a.token"})
    assert refresh.get_json() == {
        "detail": "Token is invalid or expired",
        "code": "token_not_valid",
    }
    malformed = client.get("/api/auth/me/", headers={"Authorization": "Token abc"})
    assert malformed.status_code == 401
    assert malformed.get_json()["code"] == "bad_authorization_header"


def test_form_logins_count_toward_the_same_per_username_limit(client, intern, other_intern):
    wrong = {"username": "intern", "password": "wrong"}
    for n in range(5):
        send = {"data": wrong} if n % 2 else {"json": wrong}
        assert client.post("/api/auth/login/", **send).status_code == 401
    assert client.post("/api/auth/login/", data=wrong).status_code == 429
    assert client.post("/api/auth/login/", json=wrong).status_code == 429
    other = {"username": "other", "password": PASSWORD}
    assert client.post("/api/auth/login/", data=other).status_code == 200
