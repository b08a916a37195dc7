"""Task create, read, update, replace, delete and their property rules."""

from datetime import date, timedelta

import pytest

from taskapp.tasks.schemas import TaskSchema

TASK_FIELDS = set(TaskSchema().fields)
"""The fields of a task in every answer: the schema's, derived from the one definition."""


def test_create_defaults_location_and_etag(client, intern):
    response = client.post("/api/tasks/", json={"title": "Write tests"}, headers=intern.headers)
    assert response.status_code == 201
    task = response.get_json()
    assert set(task) == TASK_FIELDS
    assert task["title"] == "Write tests" and task["description"] == ""
    assert task["status"] == "PENDING" and task["priority"] == "MEDIUM"
    assert task["due_date"] is None and task["completed_at"] is None
    assert task["assigned_to"] == intern.id and task["assigned_to_username"] == "intern"
    assert task["created_by"] == intern.id
    assert task["created_at"].endswith("Z")
    assert response.headers["Location"].endswith(f"/api/tasks/{task['id']}/")
    assert response.headers["ETag"]


def test_get_detail_with_etag(client, intern, make_task):
    task = make_task(intern, due_date="2026-12-01", priority="HIGH")
    response = client.get(f"/api/tasks/{task['id']}/", headers=intern.headers)
    assert response.status_code == 200
    assert response.get_json() == task
    assert (
        response.headers["ETag"]
        == client.get(f"/api/tasks/{task['id']}/", headers=intern.headers).headers["ETag"]
    )


def test_patch_partial_update_changes_etag(client, intern, make_task):
    task = make_task(intern, description="before")
    etag = client.get(f"/api/tasks/{task['id']}/", headers=intern.headers).headers["ETag"]
    response = client.patch(
        f"/api/tasks/{task['id']}/", json={"priority": "LOW"}, headers=intern.headers
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["priority"] == "LOW" and body["description"] == "before"
    assert response.headers["ETag"] != etag


def test_put_requires_title_and_replaces(client, intern, make_task):
    task = make_task(intern)
    missing = client.put(
        f"/api/tasks/{task['id']}/", json={"priority": "LOW"}, headers=intern.headers
    )
    assert missing.status_code == 400
    assert missing.get_json() == {"title": ["This field is required."]}
    response = client.put(
        f"/api/tasks/{task['id']}/",
        json={"title": "New", "description": "d", "status": "IN_PROGRESS", "priority": "HIGH"},
        headers=intern.headers,
    )
    assert response.status_code == 200
    assert response.get_json()["title"] == "New"
    assert response.get_json()["status"] == "IN_PROGRESS"


def test_put_of_a_fetched_body_ignores_read_only_fields(client, intern, make_task):
    task = make_task(intern)
    edited = {**task, "title": "Edited", "created_by": 999, "id": 12345}
    response = client.put(f"/api/tasks/{task['id']}/", json=edited, headers=intern.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert (
        body["title"] == "Edited" and body["created_by"] == intern.id and body["id"] == task["id"]
    )


def test_delete(client, intern, make_task):
    task = make_task(intern)
    assert client.delete(f"/api/tasks/{task['id']}/", headers=intern.headers).status_code == 204
    assert client.get(f"/api/tasks/{task['id']}/", headers=intern.headers).status_code == 404


def test_completed_stamps_and_clears_completed_at(client, intern, make_task):
    task = make_task(intern)
    url = f"/api/tasks/{task['id']}/"
    done = client.patch(url, json={"status": "COMPLETED"}, headers=intern.headers).get_json()
    assert done["completed_at"] is not None
    again = client.patch(url, json={"status": "COMPLETED"}, headers=intern.headers).get_json()
    assert again["completed_at"] == done["completed_at"]
    reopened = client.patch(url, json={"status": "IN_PROGRESS"}, headers=intern.headers).get_json()
    assert reopened["completed_at"] is None


def test_created_completed_has_completed_at(make_task, intern):
    assert make_task(intern, status="COMPLETED")["completed_at"] is not None


def test_overdue_cannot_be_set_by_a_client(client, intern, make_task):
    response = client.post(
        "/api/tasks/", json={"title": "x", "status": "OVERDUE"}, headers=intern.headers
    )
    assert response.status_code == 400 and list(response.get_json()) == ["status"]
    task = make_task(intern)
    response = client.patch(
        f"/api/tasks/{task['id']}/", json={"status": "OVERDUE"}, headers=intern.headers
    )
    assert response.status_code == 400
    assert client.get(f"/api/tasks/{task['id']}/", headers=intern.headers).get_json() == task


@pytest.mark.parametrize(
    ("new_due", "expected"),
    [(0, "PENDING"), (5, "PENDING"), (None, "PENDING"), (-1, "OVERDUE")],
)
def test_moving_due_date_of_overdue_task(client, runner, intern, make_task, new_due, expected):
    yesterday = date.today() - timedelta(days=2)
    task = make_task(intern, due_date=yesterday.isoformat())
    assert runner.invoke(args=["tasks", "mark-overdue"]).exit_code == 0
    url = f"/api/tasks/{task['id']}/"
    assert client.get(url, headers=intern.headers).get_json()["status"] == "OVERDUE"
    due = None if new_due is None else (date.today() + timedelta(days=new_due)).isoformat()
    response = client.patch(url, json={"due_date": due}, headers=intern.headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == expected


def test_admin_assigns_to_any_active_user(client, admin, intern, make_task):
    task = make_task(admin, assigned_to=intern.id)
    assert task["assigned_to"] == intern.id and task["created_by"] == admin.id
    assert task["assigned_to_username"] == "intern"
    client.patch(f"/api/users/{intern.id}/", json={"is_active": False}, headers=admin.headers)
    response = client.post(
        "/api/tasks/", json={"title": "x", "assigned_to": intern.id}, headers=admin.headers
    )
    assert response.status_code == 400 and list(response.get_json()) == ["assigned_to"]
    missing = client.post(
        "/api/tasks/", json={"title": "x", "assigned_to": 999}, headers=admin.headers
    )
    assert missing.status_code == 400


def test_admin_reassigns(client, admin, intern, other_intern, make_task):
    task = make_task(admin, assigned_to=intern.id)
    response = client.patch(
        f"/api/tasks/{task['id']}/", json={"assigned_to": other_intern.id}, headers=admin.headers
    )
    assert response.get_json()["assigned_to_username"] == "other"
    assert client.get(f"/api/tasks/{task['id']}/", headers=intern.headers).status_code == 404
    assert client.get(f"/api/tasks/{task['id']}/", headers=other_intern.headers).status_code == 200


def test_intern_cannot_assign_to_someone_else(client, intern, other_intern, make_task):
    response = client.post(
        "/api/tasks/", json={"title": "x", "assigned_to": other_intern.id}, headers=intern.headers
    )
    assert response.status_code == 403
    task = make_task(intern, assigned_to=intern.id)
    response = client.patch(
        f"/api/tasks/{task['id']}/", json={"assigned_to": other_intern.id}, headers=intern.headers
    )
    assert response.status_code == 403
    assert client.get(f"/api/tasks/{task['id']}/", headers=intern.headers).get_json() == task


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 5}, "title"),
        ({"title": None}, "title"),
        ({"title": "x", "description": "d" * 10_001}, "description"),
        ({"title": "x", "status": "DONE"}, "status"),
        ({"title": "x", "priority": "URGENT"}, "priority"),
        ({"title": "x", "priority": 3}, "priority"),
        ({"title": "x", "due_date": "2026-13-01"}, "due_date"),
        ({"title": "x", "due_date": "tomorrow"}, "due_date"),
        ({"title": "x", "assigned_to": "me"}, "assigned_to"),
        ({"title": "x", "assigned_to": 1.5}, "assigned_to"),
        ({"title": "x", "owner": 1}, "owner"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client, intern, body, field):
    response = client.post("/api/tasks/", json=body, headers=intern.headers)
    assert response.status_code == 400
    assert field in response.get_json()
    assert client.get("/api/tasks/", headers=intern.headers).get_json()["count"] == 0


def test_title_of_200_chars_and_description_of_10000_are_fine(make_task, intern):
    task = make_task(intern, title="t" * 200, description="d" * 10_000)
    assert len(task["title"]) == 200


def test_unicode_round_trips(make_task, intern):
    task = make_task(intern, title="Überprüfen 🚀 日本語", description="naïve café")
    assert task["title"] == "Überprüfen 🚀 日本語"


def test_missing_task_is_404_everywhere(client, admin):
    for method in ("get", "patch", "put", "delete"):
        response = getattr(client, method)(
            "/api/tasks/999/", json={"title": "x"}, headers=admin.headers
        )
        assert response.status_code == 404
        assert response.get_json() == {"detail": "No Task matches the given query."}


def test_stats(client, admin, intern, other_intern, make_task):
    make_task(intern, priority="HIGH")
    make_task(intern, status="COMPLETED", priority="LOW")
    make_task(other_intern)
    mine = client.get("/api/tasks/stats/", headers=intern.headers).get_json()
    assert mine == {
        "total": 2,
        "by_status": {"PENDING": 1, "IN_PROGRESS": 0, "COMPLETED": 1, "OVERDUE": 0},
        "by_priority": {"LOW": 1, "MEDIUM": 0, "HIGH": 1},
    }
    everything = client.get("/api/tasks/stats/", headers=admin.headers).get_json()
    assert everything["total"] == 3 and everything["by_priority"]["MEDIUM"] == 1
