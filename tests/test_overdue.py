"""The overdue sweep: boundaries, idempotence, time zones, and races on PostgreSQL."""

import threading
from datetime import UTC, date, datetime, timedelta

from helpers import only_postgresql

from taskapp import audit
from taskapp.extensions import db
from taskapp.models import Source
from taskapp.tasks import overdue

TODAY = date(2026, 6, 15)


def sweep_cli(runner, today: date = TODAY):
    result = runner.invoke(args=["tasks", "mark-overdue", "--today", today.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def status_of(client, person, task) -> str:
    return client.get(f"/api/tasks/{task['id']}/", headers=person.headers).get_json()["status"]


def test_boundaries(client, runner, intern, make_task):
    day = timedelta(days=1)
    due_today = make_task(intern, due_date=TODAY.isoformat())
    due_yesterday = make_task(intern, due_date=(TODAY - day).isoformat())
    in_progress = make_task(intern, status="IN_PROGRESS", due_date=(TODAY - 30 * day).isoformat())
    no_due_date = make_task(intern)
    completed = make_task(intern, status="COMPLETED", due_date=(TODAY - day).isoformat())
    assert "marked 2 task(s) overdue" in sweep_cli(runner)
    assert status_of(client, intern, due_today) == "PENDING"
    assert status_of(client, intern, due_yesterday) == "OVERDUE"
    assert status_of(client, intern, in_progress) == "OVERDUE"
    assert status_of(client, intern, no_due_date) == "PENDING"
    assert status_of(client, intern, completed) == "COMPLETED"


def test_entries_and_idempotence(client, runner, admin, intern, make_task, sql):
    task = make_task(
        intern, title="Late", status="IN_PROGRESS", due_date=(TODAY - timedelta(days=1)).isoformat()
    )
    before = client.get(f"/api/tasks/{task['id']}/", headers=intern.headers)
    sweep_cli(runner)
    after = client.get(f"/api/tasks/{task['id']}/", headers=intern.headers)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.get_json()["updated_at"] > before.get_json()["updated_at"]
    response = client.get("/api/activity-logs/?action=MARKED_OVERDUE", headers=intern.headers)
    [entry] = response.get_json()["results"]
    assert entry["task"] == task["id"] and entry["task_title"] == "Late"
    assert entry["changes"] == {"status": {"from": "IN_PROGRESS", "to": "OVERDUE"}}
    assert entry["actor"] is None and entry["actor_username"] is None
    assert entry["source"] == "system"
    assert "marked 0 task(s) overdue" in sweep_cli(runner)
    assert sql("SELECT count(*) FROM activity_log WHERE action = 'MARKED_OVERDUE'") == [(1,)]


def test_stale_etag_after_sweep_is_412(client, runner, intern, make_task):
    task = make_task(intern, due_date=(TODAY - timedelta(days=1)).isoformat())
    etag = client.get(f"/api/tasks/{task['id']}/", headers=intern.headers).headers["ETag"]
    sweep_cli(runner)
    response = client.patch(
        f"/api/tasks/{task['id']}/",
        json={"status": "COMPLETED"},
        headers={**intern.headers, "If-Match": etag},
    )
    assert response.status_code == 412


def _zone_whose_date_differs_from_utc() -> tuple[str, int]:
    """A zone whose date is not UTC's right now, and by how many days it differs."""
    now = datetime.now(UTC)
    if (now + timedelta(hours=14)).date() != now.date():
        return "Pacific/Kiritimati", 1
    return "Pacific/Pago_Pago", -1


def test_time_zone_decides_today(make_app, make_person, make_task, client):
    zone, shift = _zone_whose_date_differs_from_utc()
    intern = make_person("tz")
    utc_today = datetime.now(UTC).date()
    task = make_task(intern, due_date=(utc_today + timedelta(days=min(shift, 0))).isoformat())
    for name, expected in (("UTC", shift < 0), (zone, shift > 0)):
        app = make_app(TASKAPP_TIMEZONE=name)
        result = app.test_cli_runner().invoke(args=["tasks", "mark-overdue"])
        assert f"marked {int(expected)} task(s)" in result.output, (name, result.output)
        if expected:
            assert status_of(client, intern, task) == "OVERDUE"
            return


def _sweep_in_thread(app, barrier, counts, index, today=TODAY):
    with app.app_context():
        audit.act_as(db.session, None, Source.SYSTEM)
        barrier.wait()
        counts[index] = overdue.sweep(db.session, today)
        db.session.commit()


@only_postgresql
def test_two_simultaneous_sweeps_mark_and_log_each_task_once(app, intern, make_task, sql):
    for n in range(50):
        make_task(intern, title=f"t{n}", due_date="2026-01-01")
    barrier, counts = threading.Barrier(2), [None, None]
    threads = [
        threading.Thread(target=_sweep_in_thread, args=(app, barrier, counts, i)) for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(counts) == [0, 50] or sum(counts) == 50
    assert sql(
        "SELECT count(*), count(DISTINCT task_id) FROM activity_log WHERE action = 'MARKED_OVERDUE'"
    ) == [(50, 50)]
    assert sql("SELECT count(*) FROM task WHERE status = 'OVERDUE'") == [(50,)]


@only_postgresql
def test_sweep_holding_locks_then_user_completes(app, client, intern, make_task, sql):
    """The sweep commits first: the user's PATCH waits on the row lock, then applies to
    the OVERDUE row. Both changes stay, each with its entry, in order."""
    task = make_task(intern, due_date="2026-01-01")
    swept, release = threading.Event(), threading.Event()

    def slow_sweep():
        with app.app_context():
            audit.act_as(db.session, None, Source.SYSTEM)
            overdue.sweep(db.session, TODAY)
            swept.set()
            release.wait(timeout=30)
            db.session.commit()

    sweeper = threading.Thread(target=slow_sweep)
    sweeper.start()
    assert swept.wait(timeout=30)
    answers = []
    patcher = threading.Thread(
        target=lambda: answers.append(
            app.test_client().patch(
                f"/api/tasks/{task['id']}/", json={"status": "COMPLETED"}, headers=intern.headers
            )
        )
    )
    patcher.start()
    patcher.join(timeout=1)
    assert patcher.is_alive(), "the PATCH should wait for the sweep's row lock"
    release.set()
    sweeper.join(timeout=30)
    patcher.join(timeout=30)
    assert answers[0].status_code == 200 and answers[0].get_json()["status"] == "COMPLETED"
    assert sql("SELECT action, changes->'status'->>'from' FROM activity_log ORDER BY id") == [
        ("CREATED", None),
        ("MARKED_OVERDUE", "PENDING"),
        ("STATUS_CHANGED", "OVERDUE"),
    ]


@only_postgresql
def test_sweep_racing_user_writes_loses_no_update(app, intern, make_task, sql):
    tasks = [make_task(intern, title=f"r{n}", due_date="2026-01-01") for n in range(20)]
    barrier = threading.Barrier(2)
    answers = {}

    def complete_all():
        client = app.test_client()
        barrier.wait()
        for task in tasks:
            answers[task["id"]] = client.patch(
                f"/api/tasks/{task['id']}/", json={"status": "COMPLETED"}, headers=intern.headers
            ).status_code

    counts = [None]
    threads = [
        threading.Thread(target=complete_all),
        threading.Thread(target=_sweep_in_thread, args=(app, barrier, counts, 0)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(answers.values()) == {200}
    assert sql("SELECT count(*) FROM task WHERE status = 'COMPLETED'") == [(20,)]
    marked = sql("SELECT count(*) FROM activity_log WHERE action = 'MARKED_OVERDUE'")[0][0]
    assert marked == counts[0]
    completed_entries = sql(
        "SELECT changes->'status'->>'from', count(*) FROM activity_log "
        "WHERE action = 'STATUS_CHANGED' GROUP BY 1 ORDER BY 1"
    )
    assert dict(completed_entries) == {
        k: v for k, v in {"OVERDUE": marked, "PENDING": 20 - marked}.items() if v
    }
