"""Every event carries the task as it was when the event happened, however late it is
relayed: the changes are made with no worker running (a backlog), the task is edited,
swept, reminded, reassigned and edited again by its new assignee, and only then does a
real worker relay everything to a real receiver."""

import json

import pytest
from helpers import wait_for
from test_webhooks_delivery import register

pytestmark = pytest.mark.services


@pytest.fixture
def app(make_app):
    return make_app(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])


def make_backlog(api, client, runner, admin, intern, other_intern, make_task) -> tuple:
    """With no worker running: every event type on one INTERN's tasks, then the plan is
    reassigned to another INTERN and edited. Returns (event, the task object the API
    showed at that moment) pairs, and how many of them were still the first INTERN's."""

    def get(task):
        return api.as_(admin).get(api.task(task["id"])).get_json()

    def patch(person, task, **fields):
        answer = api.as_(person).patch(api.task(task["id"]), json=fields)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    plan = make_task(
        intern,
        title="A's plan",
        description="for A only",
        due_date="2026-01-01",
        remind_at="2026-01-01T08:00:00Z",
    )
    expected = [("task.created", plan), ("task.updated", patch(intern, plan, title="A's v2"))]
    assert runner.invoke(args=["tasks", "mark-overdue", "--today", "2026-02-01"]).exit_code == 0
    expected.append(("task.overdue", get(plan)))
    assert "announced 1 reminder(s)" in runner.invoke(args=["tasks", "remind"]).output
    expected.append(("task.reminder", get(plan)))
    scrap = make_task(intern, title="A's scrap")
    expected.append(("task.created", scrap))
    expected.append(("task.updated", patch(intern, scrap, status="IN_PROGRESS")))
    expected.append(("task.deleted", get(scrap)))
    assert api.as_(intern).delete(api.task(scrap["id"])).status_code == 204
    mine_for_a = len(expected)  # from here on the plan is B's
    expected.append(("task.updated", patch(admin, plan, assigned_to=other_intern.id)))
    expected.append(("task.updated", patch(other_intern, plan, title="B's", description="B's")))
    return expected, mine_for_a


def ordered(pairs):
    return sorted(pairs, key=lambda pair: (pair[1]["id"], pair[1]["updated_at"], pair[0]))


def test_every_event_is_the_task_of_its_own_moment_after_a_backlog(
    api,
    client,
    runner,
    start_worker,
    redis_broker,
    receiver,
    admin,
    intern,
    other_intern,
    make_task,
):
    for person, path in ((admin, "/admin"), (intern, "/a"), (other_intern, "/b")):
        register(client, person, receiver, path)
    expected, mine_for_a = make_backlog(api, client, runner, admin, intern, other_intern, make_task)
    assert receiver.requests == []

    worker = start_worker(redis_broker)
    assert wait_for(
        lambda: len(receiver.at("/admin")) >= len(expected) and len(receiver.at("/b")) >= 2, 60
    ), worker.log.read_text()[-3000:]
    wait_for(lambda: len(receiver.at("/a")) >= mine_for_a, 5)

    def got(path):
        return ordered((r.json["type"], r.json["data"]["task"]) for r in receiver.at(path))

    assert got("/admin") == ordered(expected)
    assert got("/a") == ordered(expected[:mine_for_a])
    assert got("/b") == ordered(expected[mine_for_a:])
    for request in receiver.at("/a"):
        assert request.verified_with
        assert request.json["data"]["task"]["assigned_to"] == intern.id
        assert "B's" not in json.dumps(request.json), request.json
