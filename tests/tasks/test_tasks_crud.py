"""Task create, read, update, replace, delete and their property rules."""

from datetime import date, timedelta

import pytest

from taskapp.tasks.schemas import TaskSchema

TASK_FIELDS = set(TaskSchema().fields)
"""The fields of a task in every answer: the schema's, derived from the one definition."""


def test_create_defaults_location_and_etag(api, intern):
    response = api.as_(intern).post("/api/tasks/", json={"title": "Write tests"})
    assert response.status_code == 201
    task = response.get_json()
    assert set(task) == TASK_FIELDS
    assert task["title"] == "Write tests" and task["description"] == ""
    assert task["status"] == "PENDING" and task["priority"] == "MEDIUM"
    assert task["due_date"] is None and task["completed_at"] is None
    assert task["assigned_to"] == intern.id and task["assigned_to_username"] == "intern"
    assert task["created_by"] == intern.id
    assert task["created_at"].endswith("Z")
    assert response.headers["Location"].endswith(api.task(task["id"]))
    assert response.headers["ETag"]


def test_get_detail_with_etag(api, intern, make_task):
    task = make_task(intern, due_date="2026-12-01", priority="HIGH")
    response = api.as_(intern).get(api.task(task["id"]))
    assert response.status_code == 200
    assert response.get_json() == task
    assert response.headers["ETag"] == api.as_(intern).get(api.task(task["id"])).headers["ETag"]


@pytest.mark.parametrize(
    "creator, body",
    [
        ("intern", {"title": "mine", "due_date": "2030-01-07", "priority": "HIGH"}),
        ("admin", {"title": "theirs", "assigned_to": "other_intern", "status": "COMPLETED"}),
        ("intern", {"title": "weekly", "due_date": "2030-01-07", "recurrence": "FREQ=WEEKLY"}),
    ],
    ids=["own", "assigned-by-admin", "recurring"],
)
def test_create_answers_what_the_detail_answers(api, request, creator, body):
    """The POST answers from the row it wrote, the detail from a SELECT: same bytes, same
    ETag, the assignee's username included."""
    caller = request.getfixturevalue(creator)
    if "assigned_to" in body:
        body = {**body, "assigned_to": request.getfixturevalue(body["assigned_to"]).id}
    created = api.as_(caller).post("/api/tasks/", json=body)
    assert created.status_code == 201
    detail = api.as_(caller).get(api.task(created.get_json()["id"]))
    assert created.get_data() == detail.get_data()
    assert created.headers["ETag"] == detail.headers["ETag"]
    if creator == "admin":
        assert created.get_json()["assigned_to_username"] == "other"


def test_patch_partial_update_changes_etag(api, intern, make_task):
    task = make_task(intern, description="before")
    etag = api.as_(intern).get(api.task(task["id"])).headers["ETag"]
    response = api.as_(intern).patch(api.task(task["id"]), json={"priority": "LOW"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["priority"] == "LOW" and body["description"] == "before"
    assert response.headers["ETag"] != etag


def test_put_requires_title_and_replaces(api, intern, make_task):
    task = make_task(intern)
    missing = api.as_(intern).put(api.task(task["id"]), json={"priority": "LOW"})
    assert missing.status_code == 400
    assert missing.get_json() == {"title": ["This field is required."]}
    response = api.as_(intern).put(
        api.task(task["id"]),
        json={"title": "New", "description": "d", "status": "IN_PROGRESS", "priority": "HIGH"},
    )
    assert response.status_code == 200
    assert response.get_json()["title"] == "New"
    assert response.get_json()["status"] == "IN_PROGRESS"


def test_put_of_a_fetched_body_ignores_read_only_fields(api, intern, make_task):
    task = make_task(intern)
    edited = {**task, "title": "Edited", "created_by": 999, "id": 12345}
    response = api.as_(intern).put(api.task(task["id"]), json=edited)
    assert response.status_code == 200
    body = response.get_json()
    assert (
        body["title"] == "Edited" and body["created_by"] == intern.id and body["id"] == task["id"]
    )


def test_delete(api, intern, make_task):
    task = make_task(intern)
    assert api.as_(intern).delete(api.task(task["id"])).status_code == 204
    assert api.as_(intern).get(api.task(task["id"])).status_code == 404


def test_completed_stamps_and_clears_completed_at(api, intern, make_task):
    task = make_task(intern)
    url = api.task(task["id"])
    done = api.as_(intern).patch(url, json={"status": "COMPLETED"}).get_json()
    assert done["completed_at"] is not None
    again = api.as_(intern).patch(url, json={"status": "COMPLETED"}).get_json()
    assert again["completed_at"] == done["completed_at"]
    reopened = api.as_(intern).patch(url, json={"status": "IN_PROGRESS"}).get_json()
    assert reopened["completed_at"] is None


def test_created_completed_has_completed_at(make_task, intern):
    assert make_task(intern, status="COMPLETED")["completed_at"] is not None


def test_overdue_cannot_be_set_by_a_client(api, intern, make_task):
    response = api.as_(intern).post("/api/tasks/", json={"title": "x", "status": "OVERDUE"})
    assert response.status_code == 400 and list(response.get_json()) == ["status"]
    task = make_task(intern)
    response = api.as_(intern).patch(api.task(task["id"]), json={"status": "OVERDUE"})
    assert response.status_code == 400
    assert api.as_(intern).get(api.task(task["id"])).get_json() == task


@pytest.mark.parametrize(
    ("new_due", "expected"),
    [(0, "PENDING"), (5, "PENDING"), (None, "PENDING"), (-1, "OVERDUE")],
)
def test_moving_due_date_of_overdue_task(api, runner, intern, make_task, new_due, expected):
    yesterday = date.today() - timedelta(days=2)
    task = make_task(intern, due_date=yesterday.isoformat())
    assert runner.invoke(args=["tasks", "mark-overdue"]).exit_code == 0
    url = api.task(task["id"])
    assert api.as_(intern).get(url).get_json()["status"] == "OVERDUE"
    due = None if new_due is None else (date.today() + timedelta(days=new_due)).isoformat()
    response = api.as_(intern).patch(url, json={"due_date": due})
    assert response.status_code == 200
    assert response.get_json()["status"] == expected


def test_admin_assigns_to_any_active_user(api, admin, intern, make_task):
    task = make_task(admin, assigned_to=intern.id)
    assert task["assigned_to"] == intern.id and task["created_by"] == admin.id
    assert task["assigned_to_username"] == "intern"
    api.as_(admin).patch(f"/api/users/{intern.id}/", json={"is_active": False})
    response = api.as_(admin).post("/api/tasks/", json={"title": "x", "assigned_to": intern.id})
    assert response.status_code == 400 and list(response.get_json()) == ["assigned_to"]
    missing = api.as_(admin).post("/api/tasks/", json={"title": "x", "assigned_to": 999})
    assert missing.status_code == 400


def test_admin_reassigns(api, admin, intern, other_intern, make_task):
    task = make_task(admin, assigned_to=intern.id)
    response = api.as_(admin).patch(api.task(task["id"]), json={"assigned_to": other_intern.id})
    assert response.get_json()["assigned_to_username"] == "other"
    assert api.as_(intern).get(api.task(task["id"])).status_code == 404
    assert api.as_(other_intern).get(api.task(task["id"])).status_code == 200


def test_intern_cannot_assign_to_someone_else(api, intern, other_intern, make_task):
    response = api.as_(intern).post(
        "/api/tasks/", json={"title": "x", "assigned_to": other_intern.id}
    )
    assert response.status_code == 403
    task = make_task(intern, assigned_to=intern.id)
    response = api.as_(intern).patch(api.task(task["id"]), json={"assigned_to": other_intern.id})
    assert response.status_code == 403
    assert api.as_(intern).get(api.task(task["id"])).get_json() == task


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
def test_bad_bodies_are_400_naming_the_field(api, intern, body, field):
    response = api.as_(intern).post("/api/tasks/", json=body)
    assert response.status_code == 400
    assert field in response.get_json()
    assert api.as_(intern).get("/api/tasks/").get_json()["count"] == 0


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


def test_stats(api, admin, intern, other_intern, make_task):
    make_task(intern, priority="HIGH")
    make_task(intern, status="COMPLETED", priority="LOW")
    make_task(other_intern)
    mine = api.as_(intern).get("/api/tasks/stats/").get_json()
    assert mine == {
        "total": 2,
        "by_status": {"PENDING": 1, "IN_PROGRESS": 0, "COMPLETED": 1, "OVERDUE": 0},
        "by_priority": {"LOW": 1, "MEDIUM": 0, "HIGH": 1},
    }
    everything = api.as_(admin).get("/api/tasks/stats/").get_json()
    assert everything["total"] == 3 and everything["by_priority"]["MEDIUM"] == 1
