"""User administration through the API (ADMIN only)."""

import pytest

from taskapp.models import Role

USER_FIELDS = {"id", "username", "email", "role", "is_active", "date_joined"}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}


def test_admin_creates_user_with_intern_default(api, admin):
    response = api.as_(admin).post(
        "/api/users/",
        json={"username": "Bob", "password": "long enough pw", "email": "bob@example.com"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == USER_FIELDS
    assert body["role"] == "INTERN" and body["is_active"] is True and body["username"] == "Bob"


def test_username_unique_regardless_of_case(api, admin):
    body = {"username": "ADMIN", "password": "long enough pw"}
    response = api.as_(admin).post("/api/users/", json=body)
    assert response.status_code == 409
    assert response.get_json() == {"detail": "A user with that username already exists."}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "long enough pw"}, "username"),
        ({"username": "x"}, "password"),
        ({"username": "x", "password": "short"}, "password"),
        ({"username": "x", "password": "long enough pw", "role": "ROOT"}, "role"),
        ({"username": "x", "password": "long enough pw", "email": "nope"}, "email"),
        ({"username": "bad name!", "password": "long enough pw"}, "username"),
        ({"username": "x", "password": "long enough pw", "is_staff": True}, "is_staff"),
    ],
)
def test_create_user_validation(api, admin, body, field):
    response = api.as_(admin).post("/api/users/", json=body)
    assert response.status_code == 400
    assert field in response.get_json()


def test_list_users_paginated_and_filtered(api, admin, intern, other_intern):
    response = api.as_(admin).get("/api/users/?role=INTERN")
    body = response.get_json()
    assert body["count"] == 2 and body["next"] is None and body["previous"] is None
    assert [u["username"] for u in body["results"]] == ["intern", "other"]
    api.as_(admin).patch(f"/api/users/{other_intern.id}/", json={"is_active": False})
    inactive = api.as_(admin).get("/api/users/?is_active=false").get_json()
    assert [u["username"] for u in inactive["results"]] == ["other"]
    found = api.as_(admin).get("/api/users/?search=TER").get_json()
    assert {u["username"] for u in found["results"]} == {"intern"}
    paged = api.as_(admin).get("/api/users/?page_size=1&page=2").get_json()
    assert paged["count"] == 3 and paged["results"][0]["username"] == "intern"
    assert paged["previous"].endswith("/api/users/?page_size=1")


def test_patch_user(api, admin, intern):
    response = api.as_(admin).patch(
        f"/api/users/{intern.id}/",
        json={"email": "new@example.com", "role": "ADMIN"},
    )
    assert response.status_code == 200
    assert response.get_json()["email"] == "new@example.com"
    assert response.get_json()["role"] == "ADMIN"


def test_missing_user_is_404(api, admin):
    assert api.as_(admin).get("/api/users/999/").status_code == 404
    assert api.as_(admin).patch("/api/users/999/", json={}).status_code == 404


def test_username_cannot_be_changed_by_patch(api, admin, intern):
    response = api.as_(admin).patch(f"/api/users/{intern.id}/", json={"username": "renamed"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/users/", None),
        ("post", "/api/users/", {"username": "x", "password": "long enough pw"}),
        ("get", "/api/users/{id}/", None),
        ("patch", "/api/users/{id}/", {"role": "ADMIN"}),
    ],
)
def test_intern_is_forbidden_everywhere(client, intern, method, path, body):
    response = getattr(client, method)(path.format(id=intern.id), json=body, headers=intern.headers)
    assert response.status_code == 403
    assert response.get_json() == FORBIDDEN


def test_admin_cannot_lock_themselves_out(api, admin):
    for change in ({"is_active": False}, {"role": "INTERN"}):
        response = api.as_(admin).patch(f"/api/users/{admin.id}/", json=change)
        assert response.status_code == 403
        assert response.get_json() == {
            "detail": "You cannot deactivate yourself or give up your own ADMIN role."
        }
    assert api.as_(admin).get("/api/users/").status_code == 200


def test_role_values(admin):
    assert admin.role == Role.ADMIN


@pytest.mark.parametrize("value", [0, 1, "true", "no", None])
def test_is_active_in_a_json_body_is_a_json_boolean(api, admin, intern, value):
    """The spec says boolean; schemathesis found 0 accepted as false (fuzz finding)."""
    answer = api.as_(admin).patch(f"/api/users/{intern.id}/", json={"is_active": value})
    assert answer.status_code == 400
    assert list(answer.get_json()) == ["is_active"]
    assert api.as_(intern).get("/api/auth/me/").status_code == 200


def test_is_active_in_a_form_body_takes_true_and_false_words(api, admin, intern):
    url = f"/api/users/{intern.id}/"
    answer = api.as_(admin).patch(url, data={"is_active": "false"})
    assert answer.status_code == 200 and answer.get_json()["is_active"] is False
    answer = api.as_(admin).patch(url, data={"is_active": "maybe"})
    assert answer.status_code == 400
