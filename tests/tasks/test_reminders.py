"""Reminders: the sweep through the CLI and a real Celery worker over Redis, e-mail to a
real SMTP server (aiosmtpd on loopback), exactly once, never for completed or deleted
tasks, re-armed by a new ``remind_at``."""

import socket
import threading
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from helpers import json_column, only_postgresql, wait_for

from taskapp.extensions import db
from taskapp.tasks import reminders

PAST = "2026-01-01T08:00:00Z"


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    """Start a real SMTP server on 127.0.0.1 (on a given port, or a free one)."""
    controllers = []

    def start(port: int | None = None) -> tuple[Inbox, int]:
        inbox = Inbox()
        port = port or free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


def reminded_entries(sql, task_id=None):
    rows = sql(
        "SELECT task_id, actor_id, source, changes FROM activity_log "
        "WHERE action = 'REMINDED' ORDER BY id"
    )
    return [row for row in rows if task_id is None or row[0] == task_id]


def remind(runner) -> str:
    result = runner.invoke(args=["tasks", "remind"])
    assert result.exit_code == 0, result.output
    return result.output


def test_remind_at_is_read_and_written_in_utc(api, intern, make_task):
    task = make_task(intern, remind_at="2026-03-01T10:30:00+02:00")
    assert task["remind_at"] == "2026-03-01T08:30:00Z"
    naive = make_task(intern, remind_at="2026-03-01T10:30:00")
    assert naive["remind_at"] == "2026-03-01T10:30:00Z"
    bad = api.as_(intern).post("/api/tasks/", json={"title": "t", "remind_at": "soon"})
    assert bad.status_code == 400 and list(bad.get_json()) == ["remind_at"]
    edge = api.as_(intern).post(
        "/api/tasks/", json={"title": "t", "remind_at": "0001-01-01T00:00:00+01:00"}
    )
    assert edge.status_code == 400  # before year 1 in UTC: refused, never clamped


def test_sweep_announces_due_reminders_once(api, runner, intern, make_task, sql):
    due = make_task(intern, title="due", remind_at=PAST)
    make_task(intern, title="later", remind_at="2999-01-01T00:00:00Z")
    make_task(intern, title="none")
    assert "announced 1 reminder(s)" in remind(runner)
    entries = reminded_entries(sql)
    assert [(task_id, actor, source) for task_id, actor, source, _ in entries] == [
        (due["id"], None, "system")
    ]
    changes = json_column(entries[0][3])
    assert changes["reminded_at"]["from"] is None
    assert changes["reminded_at"]["to"].endswith("Z")
    assert "announced 0 reminder(s)" in remind(runner)
    assert len(reminded_entries(sql)) == 1
    logs = api.as_(intern).get(f"/api/activity-logs/?task={due['id']}&action=REMINDED")
    assert logs.status_code == 200
    assert logs.get_json()["count"] == 1


def test_completed_or_deleted_tasks_are_never_reminded(api, runner, intern, make_task, sql):
    completed = make_task(intern, remind_at=PAST)
    api.as_(intern).patch(api.task(completed["id"]), json={"status": "COMPLETED"})
    deleted = make_task(intern, remind_at=PAST)
    api.as_(intern).delete(api.task(deleted["id"]))
    assert "announced 0 reminder(s)" in remind(runner)
    assert reminded_entries(sql) == []


def test_changing_remind_at_rearms(api, runner, intern, make_task, sql):
    task = make_task(intern, remind_at=PAST)
    remind(runner)
    same = api.as_(intern).patch(api.task(task["id"]), json={"remind_at": PAST})
    assert same.status_code == 200
    assert "announced 0 reminder(s)" in remind(runner)
    moved = api.as_(intern).patch(
        api.task(task["id"]),
        json={"remind_at": "2026-01-02T08:00:00Z"},
    )
    assert moved.status_code == 200
    assert "announced 1 reminder(s)" in remind(runner)
    assert len(reminded_entries(sql, task["id"])) == 2


def test_next_occurrence_is_reminded_as_long_before_its_due_date(api, intern, make_task):
    task = make_task(
        intern, due_date="2026-01-05", recurrence="FREQ=WEEKLY", remind_at="2026-01-04T18:00:00Z"
    )
    api.as_(intern).patch(api.task(task["id"]), json={"status": "COMPLETED"})
    listing = api.as_(intern).get(f"/api/tasks/?series={task['id']}&ordering=due_date")
    following = listing.get_json()["results"][1]
    assert following["due_date"] == "2026-01-12"
    assert following["remind_at"] == "2026-01-11T18:00:00Z"


@only_postgresql
def test_two_concurrent_sweeps_announce_each_reminder_once(app, intern, make_task, sql):
    ids = [make_task(intern, title=f"r{n}", remind_at=PAST)["id"] for n in range(30)]
    barrier = threading.Barrier(2)
    results = []

    def sweep():
        with app.app_context():
            barrier.wait()
            results.append(reminders.sweep(db.session, datetime.now(UTC), mail=True))
            db.session.commit()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results[0] + results[1]) == ids
    assert sorted(row[0] for row in reminded_entries(sql)) == ids
    owed = sql("SELECT count(*) FROM task WHERE reminder_mail_queued_at IS NOT NULL")
    assert owed == [(30,)]


@pytest.mark.services
def test_beat_reminds_and_the_worker_mails_the_assignee(
    start_worker, redis_broker, smtp_server, intern, make_task, sql
):
    inbox, port = smtp_server()
    task = make_task(intern, title="Pay the rent", description="Before noon", remind_at=PAST)
    make_task(intern, title="Not yet", remind_at="2999-01-01T00:00:00Z")
    log = start_worker(
        redis_broker,
        beat=True,
        REMINDER_SWEEP_INTERVAL_SECONDS="1",
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        REMINDER_MAIL_FROM="reminders@taskapp.test",
    ).log
    assert wait_for(lambda: inbox.envelopes, timeout=60), log.read_text()
    # Several more sweeps run: still one entry and one mail.
    assert wait_for(lambda: log.read_text().count("reminder sweep announced") >= 4, timeout=60)
    assert len(inbox.envelopes) == 1
    envelope = inbox.envelopes[0]
    assert envelope.rcpt_tos == ["intern@example.com"]
    assert envelope.mail_from == "reminders@taskapp.test"
    content = envelope.content.decode()
    assert "Subject: Reminder: Pay the rent" in content
    assert "Before noon" in content
    assert [row[0] for row in reminded_entries(sql)] == [task["id"]]
    assert sql("SELECT count(*) FROM task WHERE reminder_mail_queued_at IS NOT NULL") == [(0,)]


@pytest.mark.services
def test_a_mail_server_that_is_down_delays_the_mail_once(
    start_worker, redis_broker, smtp_server, intern, make_task, sql
):
    port = free_port()
    make_task(intern, title="Call the bank", remind_at=PAST)
    log = start_worker(
        redis_broker,
        beat=True,
        REMINDER_SWEEP_INTERVAL_SECONDS="1",
        SMTP_URL=f"smtp://127.0.0.1:{port}",
    ).log
    assert wait_for(lambda: "Retry in" in log.read_text(), timeout=60), log.read_text()
    assert sql("SELECT count(*) FROM task WHERE reminder_mail_queued_at IS NOT NULL") == [(1,)]
    inbox, _ = smtp_server(port)
    assert wait_for(lambda: inbox.envelopes, timeout=90), log.read_text()
    assert wait_for(lambda: "sent to intern@example.com" in log.read_text(), timeout=30)
    assert wait_for(lambda: log.read_text().count("reminder sweep announced") >= 10, timeout=60)
    assert len(inbox.envelopes) == 1
    assert "Subject: Reminder: Call the bank" in inbox.envelopes[0].content.decode()
    assert sql("SELECT count(*) FROM task WHERE reminder_mail_queued_at IS NOT NULL") == [(0,)]
    assert len(reminded_entries(sql)) == 1


def test_owed_mails_whose_task_was_lost_are_enqueued_again(make_app, intern, make_task, sql):
    """The mail task goes to this app's in-memory broker, where no worker takes it: as
    if the broker had lost it. The mail stays owed, and once older than
    REMINDER_MAIL_RESEND_AFTER_SECONDS a sweep enqueues it again."""
    app = make_app(SMTP_URL="smtp://127.0.0.1:9", REMINDER_MAIL_RESEND_AFTER_SECONDS=600)
    runner = app.test_cli_runner()
    make_task(intern, remind_at=PAST)
    assert "announced 1 reminder(s); 1 e-mail(s) queued" in remind(runner)
    assert "announced 0 reminder(s); 0 e-mail(s) queued" in remind(runner)
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    sql("UPDATE task SET reminder_mail_queued_at = :at", at=long_ago)
    assert "announced 0 reminder(s); 1 e-mail(s) queued" in remind(runner)
    assert "announced 0 reminder(s); 0 e-mail(s) queued" in remind(runner)
    assert sql("SELECT count(*) FROM task WHERE reminder_mail_queued_at > :at", at=long_ago) == [
        (1,)
    ]
    assert len(reminded_entries(sql)) == 1
