"""X-Request-ID: kept or replaced, echoed on every answer, recorded on the activity-log
entries a request writes (and the job id on those a Celery job writes), and carried in
the webhook message a receiver gets."""

import re

import pytest
from celery import Celery
from helpers import wait_for

GENERATED = re.compile(r"[0-9a-f]{32}")


def _logs(client, person, **params):
    response = client.get("/api/activity-logs/", query_string=params, headers=person.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


@pytest.mark.parametrize(
    "offered",
    ["a", "req-42", "1-67891233-abcdef012345678912345678", "a.b_c:d-e", "x" * 128],
)
def test_an_acceptable_id_is_kept_and_echoed(client, admin, offered):
    response = client.get("/api/tasks/", headers={**admin.headers, "X-Request-ID": offered})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == offered


@pytest.mark.parametrize(
    "offered", ["", "x" * 129, "Root=1-2", "has space", "semi;colon", "new\u00e9", "a/b", "{json}"]
)
def test_anything_else_is_replaced_by_a_generated_id(client, admin, offered):
    response = client.get("/api/tasks/", headers={**admin.headers, "X-Request-ID": offered})
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


def test_every_request_without_one_gets_a_fresh_id(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second) and first != second


def test_errors_and_304s_echo_it_too(client, admin, make_task):
    task = make_task(admin, title="etag me")
    path = f"/api/tasks/{task['id']}/"
    etag = client.get(path, headers=admin.headers).headers["ETag"]
    big = b"x" * (1024 * 1024 + 1)
    calls = {
        304: lambda h: client.get(path, headers={**admin.headers, "If-None-Match": etag, **h}),
        401: lambda h: client.get("/api/tasks/", headers=h),
        404: lambda h: client.get("/api/nowhere/", headers=h),
        405: lambda h: client.delete("/api/auth/login/", headers=h),
        400: lambda h: client.post(
            "/api/tasks/", json={"bogus": 1}, headers={**admin.headers, **h}
        ),
        415: lambda h: client.post(
            "/api/tasks/", data="x", content_type="text/plain", headers={**admin.headers, **h}
        ),
        413: lambda h: client.post(
            "/api/tasks/", data=big, content_type="application/json", headers={**admin.headers, **h}
        ),
    }
    for status, call in calls.items():
        mine = call({"X-Request-ID": f"probe-{status}"})
        assert mine.status_code == status, (status, mine.get_json())
        assert mine.headers["X-Request-ID"] == f"probe-{status}", status
        generated = call({})
        assert generated.status_code == status
        assert GENERATED.fullmatch(generated.headers["X-Request-ID"]), status


def test_an_untrusted_host_is_answered_with_an_id(client):
    response = client.get("/healthz", headers={"Host": "evil.example", "X-Request-ID": "h-1"})
    assert response.status_code == 400
    assert response.headers["X-Request-ID"] == "h-1"


def test_entries_record_the_request_that_wrote_them(client, admin, sql):
    created = client.post(
        "/api/tasks/", json={"title": "traced"}, headers={**admin.headers, "X-Request-ID": "c-1"}
    )
    task_id = created.get_json()["id"]
    client.patch(
        f"/api/tasks/{task_id}/",
        json={"title": "traced again"},
        headers={**admin.headers, "X-Request-ID": "u-1"},
    )
    untraced = client.delete(f"/api/tasks/{task_id}/", headers=admin.headers)
    generated = untraced.headers["X-Request-ID"]
    entries = _logs(client, admin, task=task_id, ordering="id")
    assert [(e["action"], e["request_id"], e["job_id"]) for e in entries] == [
        ("CREATED", "c-1", None),
        ("UPDATED", "u-1", None),
        ("DELETED", generated, None),
    ]
    one = client.get(f"/api/activity-logs/{entries[0]['id']}/", headers=admin.headers)
    assert one.get_json()["request_id"] == "c-1"
    assert sql("SELECT request_id FROM activity_log ORDER BY id") == [
        ("c-1",),
        ("u-1",),
        (generated,),
    ]


def test_cli_entries_carry_neither(client, runner, admin, make_task):
    task = make_task(admin, title="late", due_date="2020-01-01")
    assert runner.invoke(args=["tasks", "mark-overdue"]).exit_code == 0
    entry = _logs(client, admin, task=task["id"], action="MARKED_OVERDUE")[0]
    assert entry["request_id"] is None and entry["job_id"] is None


@pytest.mark.services
def test_job_entries_carry_the_celery_task_id(start_worker, redis_broker, admin, make_task, client):
    late = [make_task(admin, title=f"late {n}", due_date="2026-01-01")["id"] for n in range(2)]
    log = start_worker(redis_broker).log
    sent = Celery(broker=redis_broker).send_task(
        "taskapp.mark_overdue", kwargs={"today": "2026-01-15"}
    )

    def swept():
        return _logs(client, admin, action="MARKED_OVERDUE")

    entries = wait_for(lambda: len(swept()) == 2 and swept(), timeout=60)
    assert entries, log.read_text()
    assert {e["task"] for e in entries} == set(late)
    assert {(e["request_id"], e["job_id"]) for e in entries} == {(None, sent.id)}
