"""Every event carries the task as it was when the event happened, however late it is
relayed: the changes are made with no worker running (a backlog), the task is edited,
swept, reminded, reassigned and edited again by its new assignee, and only then does a
real worker relay everything to a real receiver."""

import json

import pytest
import test_webhooks_delivery as delivery_tests
from helpers import wait_for
from test_webhooks_delivery import register

pytestmark = pytest.mark.services

# The fixtures of the delivery tests (a real worker, real Redis, a real receiver).
app = delivery_tests.app
receiver = delivery_tests.receiver
redis_broker = delivery_tests.redis_broker
start_worker = delivery_tests.start_worker


def test_every_event_is_the_task_of_its_own_moment_after_a_backlog(
    client, runner, start_worker, redis_broker, receiver, admin, intern, other_intern, make_task
):
    register(client, admin, receiver, "/admin")
    register(client, intern, receiver, "/a")
    register(client, other_intern, receiver, "/b")

    def get(task):
        return client.get(f"/api/tasks/{task['id']}/", headers=admin.headers).get_json()

    def patch(person, task, **fields):
        answer = client.patch(f"/api/tasks/{task['id']}/", json=fields, headers=person.headers)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    expected = []  # (event, the task object the API showed at that moment)
    plan = make_task(
        intern,
        title="A's plan",
        description="for A only",
        due_date="2026-01-01",
        remind_at="2026-01-01T08:00:00Z",
    )
    expected.append(("task.created", plan))
    expected.append(("task.updated", patch(intern, plan, title="A's plan, v2")))
    assert runner.invoke(args=["tasks", "mark-overdue", "--today", "2026-02-01"]).exit_code == 0
    expected.append(("task.overdue", get(plan)))
    assert "announced 1 reminder(s)" in runner.invoke(args=["tasks", "remind"]).output
    expected.append(("task.reminder", get(plan)))
    scrap = make_task(intern, title="A's scrap")
    expected.append(("task.created", scrap))
    expected.append(("task.updated", patch(intern, scrap, status="IN_PROGRESS")))
    expected.append(("task.deleted", get(scrap)))
    assert client.delete(f"/api/tasks/{scrap['id']}/", headers=intern.headers).status_code == 204
    mine_for_a = len(expected)  # from here on the plan is B's
    expected.append(("task.updated", patch(admin, plan, assigned_to=other_intern.id)))
    expected.append(
        ("task.updated", patch(other_intern, plan, title="B's title", description="B's notes"))
    )
    assert receiver.requests == []

    worker = start_worker(redis_broker)
    assert wait_for(
        lambda: len(receiver.at("/admin")) >= len(expected) and len(receiver.at("/b")) >= 2, 60
    ), worker.log.read_text()[-3000:]
    wait_for(lambda: len(receiver.at("/a")) >= mine_for_a, 5)

    def got(path):
        return sorted(
            ((r.json["type"], r.json["data"]["task"]) for r in receiver.at(path)),
            key=lambda pair: (pair[1]["id"], pair[1]["updated_at"], pair[0]),
        )

    def ordered(pairs):
        return sorted(pairs, key=lambda pair: (pair[1]["id"], pair[1]["updated_at"], pair[0]))

    assert got("/admin") == ordered(expected)
    assert got("/a") == ordered(expected[:mine_for_a])
    assert got("/b") == ordered(expected[mine_for_a:])
    for request in receiver.at("/a"):
        assert request.verified_with
        assert request.json["data"]["task"]["assigned_to"] == intern.id
        assert "B's" not in json.dumps(request.json), request.json
