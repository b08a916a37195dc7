"""The activity log: exact entries for each write, atomic with it, append-only, and
visible to the right people."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from taskapp.audit import AppendOnlyError
from taskapp.extensions import db
from taskapp.logs.models import ActivityLog

ENTRY_FIELDS = {
    "id",
    "task",
    "task_title",
    "action",
    "changes",
    "actor",
    "actor_username",
    "source",
    "created_at",
    "request_id",
    "job_id",
}


def entries(client, person, query=""):
    response = client.get(f"/api/activity-logs/?ordering=id&{query}", headers=person.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def test_created_entry(client, admin, intern, make_task):
    task = make_task(
        admin, title="Plan", priority="HIGH", due_date="2026-12-24", assigned_to=intern.id
    )
    [entry] = entries(client, admin)
    assert set(entry) == ENTRY_FIELDS
    assert entry["task"] == task["id"] and entry["task_title"] == "Plan"
    assert entry["action"] == "CREATED" and entry["source"] == "api"
    assert entry["actor"] == admin.id and entry["actor_username"] == "admin"
    assert entry["created_at"].endswith("Z")
    assert entry["changes"] == {
        "title": {"from": None, "to": "Plan"},
        "description": {"from": None, "to": ""},
        "status": {"from": None, "to": "PENDING"},
        "priority": {"from": None, "to": "HIGH"},
        "due_date": {"from": None, "to": "2026-12-24"},
        "assigned_to": {"from": None, "to": intern.id},
    }


def test_updated_entry(api, client, intern, make_task):
    task = make_task(intern, title="Old")
    api.as_(intern).patch(
        api.task(task["id"]),
        json={"title": "New", "due_date": "2027-01-02"},
    )
    entry = entries(client, intern)[-1]
    assert entry["action"] == "UPDATED" and entry["task_title"] == "New"
    assert entry["changes"] == {
        "title": {"from": "Old", "to": "New"},
        "due_date": {"from": None, "to": "2027-01-02"},
    }


def test_status_and_title_change_is_one_status_changed_entry(api, client, intern, make_task):
    task = make_task(intern, title="Old")
    response = api.as_(intern).patch(
        api.task(task["id"]),
        json={"title": "Done it", "status": "COMPLETED"},
    )
    completed_at = response.get_json()["completed_at"]
    all_entries = entries(client, intern)
    assert [e["action"] for e in all_entries] == ["CREATED", "STATUS_CHANGED"]
    changes = all_entries[-1]["changes"]
    assert changes["title"] == {"from": "Old", "to": "Done it"}
    assert changes["status"] == {"from": "PENDING", "to": "COMPLETED"}
    assert changes["completed_at"]["from"] is None
    assert datetime.fromisoformat(changes["completed_at"]["to"]) == datetime.fromisoformat(
        completed_at
    )


def test_priority_and_reassignment_are_logged(api, client, admin, intern, other_intern, make_task):
    task = make_task(admin, assigned_to=intern.id)
    api.as_(admin).patch(
        api.task(task["id"]),
        json={"priority": "LOW", "assigned_to": other_intern.id},
    )
    entry = entries(client, admin)[-1]
    assert entry["changes"] == {
        "priority": {"from": "MEDIUM", "to": "LOW"},
        "assigned_to": {"from": intern.id, "to": other_intern.id},
    }


def test_no_op_patch_writes_no_entry(api, client, intern, make_task):
    task = make_task(intern, title="Same", priority="LOW")
    response = api.as_(intern).patch(
        api.task(task["id"]),
        json={"title": "Same", "priority": "LOW"},
    )
    assert response.status_code == 200
    assert len(entries(client, intern)) == 1


def test_deleted_entry_keeps_the_task_id(api, client, intern, make_task):
    task = make_task(intern, title="Bye")
    api.as_(intern).delete(api.task(task["id"]))
    entry = entries(client, intern)[-1]
    assert entry["action"] == "DELETED" and entry["task"] == task["id"]
    assert entry["task_title"] == "Bye"
    assert entry["changes"]["title"] == {"from": "Bye", "to": None}


def test_cli_and_system_sources(client, runner, admin):
    runner.invoke(args=["demo", "seed"])
    sources = {(e["action"], e["source"]) for e in entries(client, admin, "page_size=100")}
    assert sources == {("CREATED", "cli")}
    runner.invoke(args=["tasks", "mark-overdue", "--today", "2099-01-01"])
    overdue = entries(client, admin, "action=MARKED_OVERDUE")
    assert overdue and {(e["actor"], e["source"]) for e in overdue} == {(None, "system")}


def test_failed_transaction_stores_neither_change_nor_entry(api, app, intern, make_task, sql):
    task = make_task(intern, title="Before")

    def fail_commit(session):
        raise RuntimeError("forced failure after the flush")

    sa.event.listen(db.session, "before_commit", fail_commit)
    try:
        response = api.as_(intern).patch(api.task(task["id"]), json={"title": "After"})
    finally:
        sa.event.remove(db.session, "before_commit", fail_commit)
    assert response.status_code == 500
    assert response.get_json() == {"detail": "A server error occurred."}
    assert sql("SELECT title FROM task") == [("Before",)]
    assert sql("SELECT action FROM activity_log") == [("CREATED",)]


def test_deleted_tasks_entries_stay_visible_to_its_intern_and_admins(
    api, client, admin, intern, other_intern, make_task
):
    task = make_task(admin, title="Secret", assigned_to=intern.id)
    api.as_(intern).patch(api.task(task["id"]), json={"status": "IN_PROGRESS"})
    api.as_(admin).delete(api.task(task["id"]))
    expected = ["CREATED", "STATUS_CHANGED", "DELETED"]
    assert [e["action"] for e in entries(client, intern)] == expected
    assert [e["action"] for e in entries(client, admin)] == expected
    assert entries(client, other_intern) == []
    for entry in entries(client, admin):
        url = f"/api/activity-logs/{entry['id']}/"
        assert api.as_(intern).get(url).status_code == 200
        hidden = api.as_(other_intern).get(url)
        assert hidden.status_code == 404
        assert (
            hidden.get_json() == api.as_(other_intern).get("/api/activity-logs/99999/").get_json()
        )


def test_orm_cannot_change_or_delete_entries(app, intern, make_task):
    make_task(intern)
    with app.app_context():
        entry = db.session.execute(sa.select(ActivityLog)).scalar_one()
        entry.task_title = "rewritten"
        with pytest.raises(AppendOnlyError):
            db.session.flush()
        db.session.rollback()
        db.session.delete(db.session.execute(sa.select(ActivityLog)).scalar_one())
        with pytest.raises(AppendOnlyError):
            db.session.flush()
        db.session.rollback()
        for statement in (sa.update(ActivityLog).values(task_title="x"), sa.delete(ActivityLog)):
            with pytest.raises(AppendOnlyError):
                db.session.execute(statement)
            db.session.rollback()


@pytest.mark.parametrize(
    "statement", ["UPDATE activity_log SET task_title = 'x'", "DELETE FROM activity_log"]
)
def test_database_refuses_raw_update_and_delete(intern, make_task, sql, statement):
    make_task(intern)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        sql(statement)
    assert sql("SELECT count(*) FROM activity_log WHERE task_title != 'x'") == [(1,)]


@pytest.fixture
def history(api, admin, intern, other_intern, make_task, sql):
    first = make_task(admin, title="one", assigned_to=intern.id)
    second = make_task(intern, title="two")
    api.as_(intern).patch(api.task(first["id"]), json={"status": "COMPLETED"})
    api.as_(admin).patch(api.task(second["id"]), json={"title": "deux"})
    api.as_(intern).delete(api.task(second["id"]))
    return first, second


def test_filters(client, admin, intern, history):
    _, second = history
    by_task = entries(client, admin, f"task={second['id']}")
    assert [e["action"] for e in by_task] == ["CREATED", "UPDATED", "DELETED"]
    several = entries(client, admin, "action=STATUS_CHANGED,DELETED")
    assert [e["action"] for e in several] == ["STATUS_CHANGED", "DELETED"]
    by_actor = entries(client, admin, f"actor={admin.id}")
    assert [(e["task_title"], e["action"]) for e in by_actor] == [
        ("one", "CREATED"),
        ("deux", "UPDATED"),
    ]
    assert entries(client, admin, "created_at__lte=2000-01-01") == []
    today = datetime.now(UTC).date().isoformat()
    assert len(entries(client, admin, f"created_at__gte={today}&created_at__lte={today}")) == 5


def test_ordering_and_paging(api, client, admin, history):
    ids = [e["id"] for e in entries(client, admin)]
    assert ids == sorted(ids)
    newest = api.as_(admin).get("/api/activity-logs/").get_json()
    assert [e["id"] for e in newest["results"]] == ids[::-1]
    by_id_desc = api.as_(admin).get("/api/activity-logs/?ordering=-id&page_size=2")
    body = by_id_desc.get_json()
    assert body["count"] == 5 and [e["id"] for e in body["results"]] == ids[::-1][:2]
    assert "page=2" in body["next"]


@pytest.mark.parametrize(
    "query", ["action=EDITED", "task=abc", "ordering=title", "created_at__gte=yesterday", "page=0"]
)
def test_bad_log_parameters_are_400(api, admin, query):
    response = api.as_(admin).get(f"/api/activity-logs/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.get_json()


def test_log_is_read_only_over_http(api, client, admin, history):
    entry = entries(client, admin)[0]
    url = f"/api/activity-logs/{entry['id']}/"
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(url, json={}, headers=admin.headers).status_code == 405
    assert api.as_(admin).post("/api/activity-logs/", json={}).status_code == 405
