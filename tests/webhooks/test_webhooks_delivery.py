"""Webhooks as a real receiver sees them: a real Celery worker (with beat) over real
Redis or the embedded SQLAlchemy broker sends to a real HTTP server on loopback, which
verifies every request with the public ``standardwebhooks`` package."""

import os
import signal
import time
from collections import Counter

import pytest
import redis
from celery import Celery
from helpers import only_postgresql, wait_for

from taskapp.webhooks.jobs import NUDGE_SPACING_SECONDS

pytestmark = pytest.mark.services


@pytest.fixture
def app(make_app):
    return make_app(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])


@pytest.fixture(params=["redis", "embedded"])
def broker(request, tmp_path):
    if request.param == "redis":
        return request.getfixturevalue("redis_broker")
    return f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"


def register(client, person, receiver, path, **fields) -> dict:
    response = client.post(
        "/api/webhooks/", json={"url": receiver.url(path), **fields}, headers=person.headers
    )
    assert response.status_code == 201, response.get_json()
    hook = response.get_json()
    receiver.trust(path, hook["secret"])
    return hook


def events(received) -> list[tuple[str, int]]:
    return [(r.json["type"], r.json["data"]["task"]["id"]) for r in received]


def deliveries(client, person, hook) -> list[dict]:
    path = f"/api/webhooks/{hook['id']}/deliveries/?page_size=100"
    return client.get(path, headers=person.headers).get_json()["results"]


def write_and_refuse(api, runner, make_task, admin, intern, other_intern) -> dict:
    """Create, patch, reassign, delete and sweep; then writes that are refused (400,
    404, 412, 403), which must send nothing. Returns the API's answers to compare."""
    first = make_task(intern, title="first")
    path = api.task(first["id"])
    renamed = api.as_(intern).patch(path, json={"title": "renamed"}).get_json()
    api.as_(intern).patch(path, json={"status": "IN_PROGRESS"})
    theirs = make_task(other_intern, title="theirs")
    theirs_last = api.as_(admin).get(api.task(theirs["id"])).get_json()
    api.as_(admin).patch(path, json={"assigned_to": other_intern.id})
    assert api.as_(admin).delete(api.task(theirs["id"])).status_code == 204
    late = make_task(intern, title="late", due_date="2026-01-01")
    own = api.as_(intern)
    assert own.patch(api.task(late["id"]), json={"status": "DONE"}).status_code == 400
    assert own.patch(path, json={"title": "x"}).status_code == 404
    stale = {"If-Match": '"1-0"'}
    assert own.patch(api.task(late["id"]), json={"title": "x"}, headers=stale).status_code == 412
    forbidden = {"title": "x", "assigned_to": admin.id}
    assert own.post("/api/tasks/", json=forbidden).status_code == 403
    assert runner.invoke(args=["tasks", "mark-overdue", "--today", "2026-02-01"]).exit_code == 0
    return {
        "first": first,
        "renamed": renamed,
        "theirs": theirs,
        "theirs_last": theirs_last,
        "late": late,
    }


def assert_payloads_are_the_apis(admin_got, made: dict, intern, other_intern) -> None:
    by_event = {}  # (type, title): SQLite may give a deleted task's id to the next one
    for request in admin_got:
        data = request.json["data"]
        by_event.setdefault((request.json["type"], data["task"]["title"]), []).append(request.json)
    created = by_event[("task.created", "first")][0]
    assert created["data"]["task"] == made["first"]  # exactly the API's answer to the POST
    assert created["data"]["actor"] == intern.id and created["data"]["source"] == "api"
    updates = by_event[("task.updated", "renamed")]
    assert made["renamed"] in [u["data"]["task"] for u in updates]
    reassigned = next(u for u in updates if "assigned_to" in u["data"]["changes"])
    assert reassigned["data"]["changes"]["assigned_to"] == {
        "from": intern.id,
        "to": other_intern.id,
    }
    deleted = by_event[("task.deleted", "theirs")][0]
    assert deleted["data"]["task"] == made["theirs_last"]
    overdue = by_event[("task.overdue", "late")][0]["data"]
    assert overdue["task"]["status"] == "OVERDUE" and overdue["task"]["title"] == "late"
    assert overdue["actor"] is None and overdue["source"] == "system"
    assert overdue["changes"] == {"status": {"from": "PENDING", "to": "OVERDUE"}}


def test_each_committed_change_arrives_once_signed_with_its_data(
    api, client, runner, start_worker, broker, receiver, admin, intern, other_intern, make_task
):
    """Create, patch, reassign, delete and sweep; refused writes send nothing; an
    INTERN's webhook hears only of tasks assigned to them when the change happened."""
    register(client, admin, receiver, "/admin")
    register(client, intern, receiver, "/intern")
    worker = start_worker(broker)
    made = write_and_refuse(api, runner, make_task, admin, intern, other_intern)
    first, theirs, late = made["first"]["id"], made["theirs"]["id"], made["late"]["id"]
    expected_admin = [
        ("task.created", first),
        ("task.updated", first),
        ("task.updated", first),
        ("task.created", theirs),
        ("task.updated", first),
        ("task.deleted", theirs),
        ("task.created", late),
        ("task.overdue", late),
    ]
    expected_intern = [*expected_admin[:3], *expected_admin[-2:]]
    done = wait_for(
        lambda: len(receiver.at("/admin")) >= 8 and len(receiver.at("/intern")) >= 5, 30
    )
    assert done, worker.log.read_text()[-3000:]
    assert "(first try, from the tick)" in worker.log.read_text()  # one queue hop, not two
    admin_got, intern_got = receiver.at("/admin"), receiver.at("/intern")
    assert Counter(events(admin_got)) == Counter(expected_admin)
    assert Counter(events(intern_got)) == Counter(expected_intern)
    for request in admin_got + intern_got:
        assert request.verified_with, request.headers  # standardwebhooks accepted it
        assert request.headers["webhook-signature"].startswith("v1,")
    assert len({r.msg_id for r in admin_got}) == 8
    assert_payloads_are_the_apis(admin_got, made, intern, other_intern)


def test_a_commit_nudges_a_tick_at_once(
    make_app, start_worker, redis_broker, receiver, admin, intern
):
    """Beat ticks only every 30 s here: the delivery can only come this fast because
    the POST's commit (a task and its entry in one statement on PostgreSQL) nudged a
    tick through the broker."""
    celery = {"broker_url": redis_broker, "task_ignore_result": True}
    app = make_app(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], CELERY=celery)
    client = app.test_client()
    register(client, admin, receiver, "/admin")
    start_worker(redis_broker, WEBHOOK_RELAY_INTERVAL_SECONDS="30")
    time.sleep(2)  # past beat's first tick, if it sends one at start
    started = time.monotonic()
    response = client.post("/api/tasks/", json={"title": "nudged"}, headers=intern.headers)
    assert response.status_code == 201
    assert wait_for(lambda: receiver.at("/admin"), timeout=10)
    assert events(receiver.at("/admin")) == [("task.created", response.get_json()["id"])]
    assert time.monotonic() - started < 5


def test_a_burst_of_commits_shares_its_nudges(make_app, redis_broker, intern):
    """No worker consumes the broker's queue here, so it holds every nudge sent: forty
    POSTs in a row send at most one per NUDGE_SPACING_SECONDS, not one each."""
    celery = {"broker_url": redis_broker, "task_ignore_result": True}
    client = make_app(CELERY=celery).test_client()
    started = time.monotonic()
    for n in range(40):
        response = client.post("/api/tasks/", json={"title": f"burst {n}"}, headers=intern.headers)
        assert response.status_code == 201
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # the last nudge leaves its thread
    queued = redis.Redis.from_url(redis_broker).llen("celery")
    assert 1 <= queued <= elapsed / NUDGE_SPACING_SECONDS + 2, (queued, elapsed)


def test_retries_same_id_new_timestamps_410_disables_redirects_fail(
    api, client, start_worker, redis_broker, receiver, admin, make_task, sql
):
    flaky = register(client, admin, receiver, "/flaky")
    receiver.script("/flaky", [500, 500, 200])
    gone = register(client, admin, receiver, "/gone")
    receiver.script("/gone", [410])
    moved = register(client, admin, receiver, "/moved")
    receiver.script("/moved", [302, 302, 302], location="http://169.254.169.254/latest/")
    register(client, admin, receiver, "/busy")
    receiver.script("/busy", [429], retry_after="2")
    worker = start_worker(redis_broker)
    make_task(admin, title="one change")
    assert wait_for(lambda: len(receiver.at("/flaky")) == 3, 20), worker.log.read_text()
    tries = receiver.at("/flaky")
    assert [t.answered for t in tries] == [500, 500, 200]
    assert len({t.msg_id for t in tries}) == 1
    stamps = [int(t.headers["webhook-timestamp"]) for t in tries]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert all(t.verified_with for t in tries)
    # the receiver sees the request before the worker records its answer
    assert wait_for(lambda: deliveries(client, admin, flaky)[0]["status"] == "succeeded", 10)
    [log] = deliveries(client, admin, flaky)
    assert (log["status"], log["attempts"], log["last_status_code"]) == ("succeeded", 3, 200)
    assert "taskapp.deliver_webhook" in worker.log.read_text()  # retries go through the queue

    assert wait_for(lambda: len(receiver.at("/moved")) == 3, 20), worker.log.read_text()
    assert wait_for(lambda: deliveries(client, admin, moved)[0]["status"] == "failed", 10)
    [log] = deliveries(client, admin, moved)
    assert log["attempts"] == 3 and log["last_status_code"] == 302
    assert "redirect not followed" in log["last_error"]
    moved_now = api.as_(admin).get(f"/api/webhooks/{moved['id']}/").get_json()
    assert moved_now["is_active"] is False and "failed" in moved_now["disabled_reason"]

    assert len(receiver.at("/gone")) == 1
    gone_now = api.as_(admin).get(f"/api/webhooks/{gone['id']}/").get_json()
    assert gone_now["is_active"] is False and "410" in gone_now["disabled_reason"]
    assert deliveries(client, admin, gone)[0]["status"] == "failed"

    assert wait_for(lambda: len(receiver.at("/busy")) == 2, 20), worker.log.read_text()
    first, second = receiver.at("/busy")
    assert second.at - first.at >= 1.9  # Retry-After: 2 beats the schedule's 1 s
    assert sql("SELECT count(*) FROM webhook_attempt WHERE duration_ms >= 0") == [(3 + 3 + 1 + 2,)]
    make_task(admin, title="after")  # disabled webhooks hear nothing more
    assert wait_for(lambda: len(receiver.at("/flaky")) == 4, 20)
    assert len(receiver.at("/gone")) == 1 and len(receiver.at("/moved")) == 3


def test_writes_while_broker_and_worker_are_down_arrive_when_they_are_back(
    make_app, start_worker, redis_broker, receiver, make_person
):
    app = make_app(
        WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"],
        CELERY={"broker_url": "redis://127.0.0.1:1/0", "task_ignore_result": True},
    )
    client = app.test_client()
    admin = make_person("boss", role="ADMIN")
    headers = admin.headers
    hook = client.post(
        "/api/webhooks/", json={"url": receiver.url("/late")}, headers=headers
    ).get_json()
    receiver.trust("/late", hook["secret"])
    ids = []
    for n in range(20):
        response = client.post("/api/tasks/", json={"title": f"t{n}"}, headers=headers)
        assert response.status_code == 201
        ids.append(response.get_json()["id"])
    assert client.post(f"/api/webhooks/{hook['id']}/ping/", headers=headers).status_code == 202
    assert receiver.requests == []
    worker = start_worker(redis_broker)
    assert wait_for(lambda: len(receiver.at("/late")) >= 21, 30), worker.log.read_text()
    got = receiver.at("/late")
    assert (
        sorted(r.json["data"]["task"]["id"] for r in got if r.json["type"] != "webhook.ping") == ids
    )
    assert [r.json["type"] for r in got].count("webhook.ping") == 1


def test_a_worker_killed_mid_delivery_leaves_the_message_to_be_sent_again(
    client, start_worker, redis_broker, receiver, admin, make_task
):
    register(client, admin, receiver, "/slow")
    receiver.hold("/slow", 1.5)
    worker = start_worker(redis_broker, WEBHOOK_TIMEOUT_SECONDS="2")
    make_task(admin, title="interrupted")
    assert receiver.started.wait(20), worker.log.read_text()
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its beat child, as a lost machine
    worker.wait(10)
    held = wait_for(lambda: receiver.at("/slow"), 5)  # the held request finished unheard
    assert len(held) == 1
    restarted = start_worker(redis_broker, WEBHOOK_TIMEOUT_SECONDS="2")
    assert wait_for(lambda: len(receiver.at("/slow")) == 2, 40), restarted.log.read_text()
    first, again = receiver.at("/slow")
    assert first.msg_id == again.msg_id and again.verified_with


def test_rotation_ping_redelivery_and_purge(
    api, client, start_worker, redis_broker, receiver, intern, sql
):
    hook = register(client, intern, receiver, "/rot")
    old_secret = hook["secret"]
    base = f"/api/webhooks/{hook['id']}/"
    worker = start_worker(redis_broker)
    first_ping = api.as_(intern).post(base + "ping/").get_json()
    assert wait_for(lambda: len(receiver.at("/rot")) == 1, 20), worker.log.read_text()
    new_secret = api.as_(intern).post(base + "rotate-secret/").get_json()["secret"]
    receiver.trust("/rot", old_secret, new_secret)
    api.as_(intern).post(base + "ping/")
    assert wait_for(lambda: len(receiver.at("/rot")) == 2, 20)
    during = receiver.at("/rot")[1]
    assert during.verified_with == [old_secret, new_secret]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    sql("UPDATE webhook SET previous_secret_expires_at = created_at")
    api.as_(intern).post(base + "ping/")
    assert wait_for(lambda: len(receiver.at("/rot")) == 3, 20)
    after = receiver.at("/rot")[2]
    assert after.verified_with == [new_secret]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert after.json["type"] == "webhook.ping" and after.json["data"] == {"webhook": hook["id"]}

    redo = api.as_(intern).post(base + f"deliveries/{first_ping['id']}/redeliver/")
    assert redo.status_code == 202
    assert wait_for(lambda: len(receiver.at("/rot")) == 4, 20)
    assert receiver.at("/rot")[3].msg_id == receiver.at("/rot")[0].msg_id == first_ping["msg_id"]

    sql("UPDATE webhook_delivery SET created_at = '2020-01-01 00:00:00+00:00'")
    Celery(broker=redis_broker).send_task("taskapp.purge_webhook_deliveries")
    assert wait_for(lambda: sql("SELECT count(*) FROM webhook_delivery") == [(0,)], 20)
    assert sql("SELECT count(*) FROM webhook_attempt") == [(0,)]


@only_postgresql
def test_two_workers_a_thousand_changes(
    client, start_worker, redis_broker, receiver, admin, make_task
):
    register(client, admin, receiver, "/bulk")
    start_worker(redis_broker)
    second = start_worker(redis_broker, beat=False)
    ids = [make_task(admin, title=f"bulk {n}")["id"] for n in range(1000)]
    done = wait_for(lambda: len({r.msg_id for r in receiver.at("/bulk")}) >= 1000, 120)
    assert done, second.log.read_text()[-2000:]
    got = receiver.at("/bulk")
    assert receiver.max_in_flight_per_id == 1
    per_task = {}
    for request in got:
        assert request.verified_with
        per_task.setdefault(request.json["data"]["task"]["id"], set()).add(request.msg_id)
    assert sorted(per_task) == ids
    assert all(len(msg_ids) == 1 for msg_ids in per_task.values())
    assert len({r.msg_id for r in got}) == 1000
    assert "webhook delivery" in second.log.read_text()  # both workers sent (tick or message)


def test_a_reminder_that_comes_due_is_announced_as_task_reminder(
    client, runner, start_worker, redis_broker, receiver, intern, make_task
):
    register(client, intern, receiver, "/mine", events=["task.reminder"])
    worker = start_worker(redis_broker)
    task = make_task(intern, title="call the bank", remind_at="2026-01-01T09:00:00Z")
    assert "announced 1 reminder(s)" in runner.invoke(args=["tasks", "remind"]).output
    assert wait_for(lambda: receiver.at("/mine"), 20), worker.log.read_text()[-3000:]
    [got] = receiver.at("/mine")
    assert got.verified_with and got.json["type"] == "task.reminder"
    data = got.json["data"]
    assert data["task"]["id"] == task["id"] and data["task"]["remind_at"] == task["remind_at"]
    assert data["actor"] is None and data["source"] == "system"
    assert list(data["changes"]) == ["reminded_at"]
