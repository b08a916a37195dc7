"""The sync feed GET /api/tasks/changes/: the first pass, changes since a token, removals
(deleted, reassigned away), signed and expiring tokens, its cost, and the guarantee
under concurrent writers that commit out of start order."""

import random
import threading
import time

import pytest
from helpers import only_postgresql

from taskapp.audit import act_as
from taskapp.events import signed
from taskapp.events.log import Position
from taskapp.extensions import db
from taskapp.models import Source
from taskapp.tasks.models import Task

URL = "/api/tasks/changes/"


def call(client, person, since="", page_size=None, status=200):
    query = {"since": since}
    if page_size is not None:
        query["page_size"] = page_size
    response = client.get(URL, query_string=query, headers=person.headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()


class Replica:
    """What a sync client holds: task id -> task, and its token."""

    def __init__(self):
        self.tasks: dict[int, dict] = {}
        self.token = ""
        self.calls = 0

    def apply(self, body: dict) -> None:
        for task in body["changed"]:
            self.tasks[task["id"]] = task
        for task_id in body["removed"]:
            self.tasks.pop(task_id, None)
        self.token = body["next"]
        self.calls += 1

    def sync(self, client, person, page_size=3) -> None:
        while True:
            body = call(client, person, self.token, page_size)
            self.apply(body)
            if not body["more"]:
                return


def visible_now(client, person) -> dict[int, dict]:
    tasks, page = {}, 1
    while True:
        response = client.get(
            "/api/tasks/", query_string={"page": page, "page_size": 100}, headers=person.headers
        )
        body = response.get_json()
        tasks.update({task["id"]: task for task in body["results"]})
        if not body["next"]:
            return tasks
        page += 1


def test_first_call_pages_through_the_full_set(client, admin, intern, make_task):
    mine = [make_task(intern, f"t{i}")["id"] for i in range(5)]
    make_task(admin, "not the intern's")
    replica = Replica()
    body = call(client, intern, page_size=2)
    assert set(body) == {"changed", "removed", "next", "more"}
    assert [t["id"] for t in body["changed"]] == mine[:2] and body["more"] is True
    replica.apply(body)
    replica.sync(client, intern, page_size=2)
    assert sorted(replica.tasks) == mine
    assert (
        replica.tasks[mine[0]]
        == client.get(f"/api/tasks/{mine[0]}/", headers=intern.headers).get_json()
    )


def test_changes_since_a_token(client, admin, intern, other_intern, make_task):
    kept = make_task(intern, "kept")
    edited = make_task(intern, "edited")
    deleted = make_task(intern, "deleted")
    moved = make_task(intern, "moved away")
    replica = Replica()
    replica.sync(client, intern)
    quiet = call(client, intern, replica.token)
    assert quiet["changed"] == [] and quiet["removed"] == [] and quiet["more"] is False

    client.patch(f"/api/tasks/{edited['id']}/", json={"title": "v2"}, headers=intern.headers)
    client.patch(f"/api/tasks/{edited['id']}/", json={"title": "v3"}, headers=intern.headers)
    client.delete(f"/api/tasks/{deleted['id']}/", headers=intern.headers)
    client.patch(
        f"/api/tasks/{moved['id']}/", json={"assigned_to": other_intern.id}, headers=admin.headers
    )
    given = make_task(admin, "given to intern", assigned_to=intern.id)
    make_task(other_intern, "someone else's")

    body = call(client, intern, replica.token)
    assert [t["id"] for t in body["changed"]] == [edited["id"], given["id"]]
    assert body["changed"][0]["title"] == "v3"
    assert body["removed"] == [deleted["id"], moved["id"]]
    assert body["more"] is False
    replica.apply(body)
    assert replica.tasks == visible_now(client, intern)
    assert kept["id"] in replica.tasks

    # The new assignee hears of the reassigned task; the admin hears of everything.
    other = Replica()
    other.sync(client, other_intern)
    assert moved["id"] in other.tasks
    everything = Replica()
    everything.sync(client, admin, page_size=2)
    assert everything.tasks == visible_now(client, admin)


def test_reassigned_back_is_changed_not_removed(client, admin, intern, other_intern, make_task):
    task = make_task(intern)
    replica = Replica()
    replica.sync(client, intern)
    url = f"/api/tasks/{task['id']}/"
    client.patch(url, json={"assigned_to": other_intern.id}, headers=admin.headers)
    client.patch(url, json={"assigned_to": intern.id}, headers=admin.headers)
    body = call(client, intern, replica.token)
    assert [t["id"] for t in body["changed"]] == [task["id"]] and body["removed"] == []


def test_forged_and_foreign_tokens_are_400(app, client, intern, make_task):
    make_task(intern)
    token = call(client, intern)["next"]
    for forged in (token[:-2] + "xx", "abc", token + "a", "Ω" * 5):
        body = call(client, intern, forged, status=400)
        assert body == {
            "since": ["Invalid sync token: pass the `next` of a previous answer, or nothing."]
        }
    with app.app_context():
        key = app.config["JWT_SECRET_KEY"]
    event_id = signed.dump(key, signed.EVENT_SALT, signed.Token(Position(0, 1), int(time.time())))
    call(client, intern, event_id, status=400)
    call(client, intern, page_size=0, status=400)
    call(client, intern, page_size=1001, status=400)


def test_token_older_than_the_retention_is_410(make_app, intern, make_task):
    app = make_app(CHANGES_RETENTION_DAYS=1)
    client = app.test_client()
    old = signed.Token(Position(0, 0), int(time.time()) - 2 * 86400)
    stale = signed.dump(app.config["JWT_SECRET_KEY"], signed.FEED_SALT, old)
    response = client.get(URL, query_string={"since": stale}, headers=intern.headers)
    assert response.status_code == 410
    assert "without `since`" in response.get_json()["detail"]


def test_a_personal_token_needs_tasks_read(client, intern):
    response = client.post(
        "/api/auth/tokens/", json={"name": "x", "scopes": ["logs:read"]}, headers=intern.headers
    )
    headers = {"Authorization": f"Bearer {response.get_json()['token']}"}
    assert client.get(URL, headers=headers).status_code == 403
    assert client.get(URL).status_code == 401


def test_route_does_not_collide_with_task_ids(client, intern, make_task):
    task = make_task(intern)
    assert client.get(f"/api/tasks/{task['id']}/", headers=intern.headers).status_code == 200
    assert client.get(URL, headers=intern.headers).status_code == 200


def test_an_unchanged_feed_is_one_query(client, admin, intern, make_task, count_queries):
    for i in range(3):
        make_task(intern, f"t{i}")
    replica = Replica()
    replica.sync(client, intern)
    with count_queries() as statements:
        body = call(client, intern, replica.token)
    assert body["changed"] == [] and body["more"] is False
    log_reads = [s for s in statements if "activity_log" in s]
    assert len(log_reads) == 1
    assert len(statements) == 2  # the token check, then the feed


# --- the guarantee under concurrent writers -------------------------------------------


def _writer(app, actor_id: int, action, hold: float, started: threading.Event, errors: list):
    """One transaction: ``action(session)``, flush (ids and xid are taken now), then wait
    ``hold`` seconds before committing: writers commit in another order than they began."""
    try:
        with app.app_context():
            act_as(db.session, actor_id, Source.API)
            action(db.session)
            db.session.flush()
            started.set()
            time.sleep(hold)
            db.session.commit()
    except Exception as error:  # reported by the test
        errors.append(error)
        started.set()


def _actions(rng, task_ids, people):
    """A random mix of creates, updates, reassignments and deletes (one each call)."""
    kind = rng.choice(["create", "update", "reassign", "delete"]) if task_ids else "create"
    target = rng.choice(task_ids) if task_ids else None
    owner = rng.choice(people)

    def run(session):
        if kind == "create":
            session.add(
                Task(title=f"new {rng.random():.6f}", assigned_to_id=owner, created_by_id=owner)
            )
            return
        task = session.get(Task, target, with_for_update=True)
        if task is None:
            return
        if kind == "update":
            task.title = f"edit {rng.random():.6f}"
        elif kind == "reassign":
            task.assigned_to_id = owner
        else:
            session.delete(task)

    return kind, target, run


def _concurrent_run(app, client, admin, intern, other_intern, make_task, rounds, hold):
    rng = random.Random(7)
    people = [intern.id, other_intern.id, admin.id]
    for i in range(6):
        make_task(admin, f"seed {i}", assigned_to=people[i % 3])
    replicas = {person.username: (person, Replica()) for person in (admin, intern, other_intern)}
    for person, replica in replicas.values():
        replica.sync(client, person)
    errors: list = []
    for _ in range(rounds):
        with app.app_context():
            ids = list(db.session.execute(db.select(Task.id)).scalars())
            db.session.remove()
        threads, targets = [], set()
        # Each round: a slow writer starts first and commits last; quick ones in between.
        for index, holding in enumerate((hold, 0, hold / 3, 0)):
            _kind, target, run = _actions(rng, [i for i in ids if i not in targets], people)
            targets.add(target)
            started = threading.Event()
            thread = threading.Thread(
                target=_writer, args=(app, admin.id, run, holding, started, errors)
            )
            thread.start()
            started.wait(10)
            threads.append(thread)
            # A client syncs while the slow writer is still uncommitted.
            person, replica = list(replicas.values())[index % 3]
            replica.sync(client, person, page_size=2)
        for thread in threads:
            thread.join()
    assert not errors, errors
    for person, replica in replicas.values():
        replica.sync(client, person, page_size=2)
        assert replica.tasks == visible_now(client, person), person.username


@only_postgresql
def test_no_change_is_missed_when_writers_commit_out_of_order_postgresql(
    app, client, admin, intern, other_intern, make_task
):
    _concurrent_run(app, client, admin, intern, other_intern, make_task, rounds=12, hold=0.3)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_change_is_missed_under_concurrent_writers_sqlite(
    app, client, admin, intern, other_intern, make_task
):
    # SQLite serialises writers: the slow one holds the write lock and the others wait.
    _concurrent_run(app, client, admin, intern, other_intern, make_task, rounds=6, hold=0.1)


@only_postgresql
def test_an_uncommitted_lower_transaction_holds_the_line(app, client, admin, intern, make_task):
    """The exact case an id watermark gets wrong: entry 2 commits while entry 1 (taken
    first) is still open. The client must not move past entry 1."""
    first = make_task(intern, "first")
    second = make_task(intern, "second")
    replica = Replica()
    replica.sync(client, intern)
    release = threading.Event()
    flushed = threading.Event()

    def slow():
        with app.app_context():
            act_as(db.session, admin.id, Source.API)
            db.session.get(Task, first["id"]).title = "slow edit"
            db.session.flush()
            flushed.set()
            release.wait(10)
            db.session.commit()

    thread = threading.Thread(target=slow)
    thread.start()
    flushed.wait(10)
    client.patch(
        f"/api/tasks/{second['id']}/", json={"title": "quick edit"}, headers=intern.headers
    )
    replica.sync(client, intern)
    release.set()
    thread.join()
    replica.sync(client, intern)
    assert replica.tasks[first["id"]]["title"] == "slow edit"
    assert replica.tasks[second["id"]]["title"] == "quick edit"
