"""The webhooks API as a client sees it: registration and its checks, who sees which
webhook, the secret shown once and stored encrypted, rotation, ping, the delivery log
and redelivery. Sending is covered in test_webhooks_delivery.py (a real worker)."""

import pytest
from receiver import Receiver

from taskapp.webhooks import delivery

ALL_TASK_EVENTS = ["task.created", "task.updated", "task.deleted", "task.overdue", "task.reminder"]
RECEIVER = "http://hooks.example.com/in"


@pytest.fixture
def app(make_app):
    return make_app(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])


def register(client, person, url=RECEIVER, **fields):
    return client.post("/api/webhooks/", json={"url": url, **fields}, headers=person.headers)


def test_register_shows_the_secret_once(client, intern, sql):
    response = register(client, intern, description="chat")
    assert response.status_code == 201
    hook = response.get_json()
    assert set(hook) == {
        "id",
        "url",
        "events",
        "description",
        "is_active",
        "disabled_reason",
        "owner",
        "created_at",
        "secret",
    }
    assert hook["events"] == ALL_TASK_EVENTS
    assert hook["owner"] == intern.id and hook["is_active"] is True
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) >= 6 + 32
    again = client.get(f"/api/webhooks/{hook['id']}/", headers=intern.headers).get_json()
    assert "secret" not in again
    listed = client.get("/api/webhooks/", headers=intern.headers).get_json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    stored = sql("SELECT secret_encrypted FROM webhook")[0][0]
    assert hook["secret"] not in stored and hook["secret"][6:] not in stored


def test_registration_with_an_idempotency_key_replays_without_storing_the_secret(
    client, intern, sql
):
    headers = {**intern.headers, "Idempotency-Key": "hook-once"}
    body = {"url": RECEIVER, "description": "chat"}
    first = client.post("/api/webhooks/", json=body, headers=headers)
    again = client.post("/api/webhooks/", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert sql("SELECT count(*) FROM webhook")[0][0] == 1
    secret = first.get_json()["secret"]
    [(stored_answer,)] = sql("SELECT body FROM idempotency_key")
    assert secret not in stored_answer and secret[6:] not in stored_answer
    other = client.post("/api/webhooks/", json={**body, "description": "x"}, headers=headers)
    assert other.status_code == 422


def test_a_token_needs_the_webhook_scopes(client, intern):
    def token(*scopes):
        body = {"name": "hooks", "scopes": list(scopes)}
        return client.post("/api/auth/tokens/", json=body, headers=intern.headers).get_json()

    reader = {"Authorization": f"Bearer {token('webhooks:read')['token']}"}
    writer = {"Authorization": f"Bearer {token('webhooks:write')['token']}"}
    tasks_only = {"Authorization": f"Bearer {token('tasks:read')['token']}"}
    assert client.post("/api/webhooks/", json={"url": RECEIVER}, headers=reader).status_code == 403
    assert client.post("/api/webhooks/", json={"url": RECEIVER}, headers=writer).status_code == 201
    assert client.get("/api/webhooks/", headers=reader).status_code == 200
    assert client.get("/api/webhooks/", headers=tasks_only).status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_a_literal_internal_address_is_refused(make_app, make_person, url, sql):
    app = make_app()  # no WEBHOOK_ALLOWED_NETWORKS
    person = make_person("someone")
    response = app.test_client().post("/api/webhooks/", json={"url": url}, headers=person.headers)
    assert response.status_code == 400
    assert list(response.get_json()) == ["url"]
    assert sql("SELECT count(*) FROM webhook") == [(0,)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({}, "url"),
        ({"url": RECEIVER, "events": ["task.exploded"]}, "events"),
        ({"url": RECEIVER, "events": []}, "events"),
        ({"url": RECEIVER, "events": "task.created"}, "events"),
        ({"url": RECEIVER, "secret": "whsec_mine"}, "secret"),
        ({"url": RECEIVER, "owner": 1}, "owner"),
        ({"url": "http://hooks.example.com:99999/"}, "url"),
        ({"url": "https://\u00cf/"}, "url"),
    ],
)
def test_bad_registrations_are_400_on_the_field(client, intern, body, field, sql):
    response = client.post("/api/webhooks/", json=body, headers=intern.headers)
    assert response.status_code == 400
    assert field in response.get_json()
    assert sql("SELECT count(*) FROM webhook") == [(0,)]


def test_an_intern_manages_only_their_own_an_admin_every_one(client, admin, intern, other_intern):
    mine = register(client, intern).get_json()
    theirs = register(client, other_intern).get_json()
    path = f"/api/webhooks/{theirs['id']}/"
    assert client.get(path, headers=intern.headers).status_code == 404
    assert client.patch(path, json={"description": "x"}, headers=intern.headers).status_code == 404
    assert client.delete(path, headers=intern.headers).status_code == 404
    assert client.post(path + "ping/", headers=intern.headers).status_code == 404
    assert client.post(path + "rotate-secret/", headers=intern.headers).status_code == 404
    assert client.get(path + "deliveries/", headers=intern.headers).status_code == 404
    listed = client.get("/api/webhooks/", headers=intern.headers).get_json()
    assert [h["id"] for h in listed["results"]] == [mine["id"]]
    every = client.get("/api/webhooks/", headers=admin.headers).get_json()
    assert [h["id"] for h in every["results"]] == [mine["id"], theirs["id"]]
    assert client.get(path, headers=admin.headers).status_code == 200
    assert client.get("/api/webhooks/").status_code == 401


def test_patch_and_delete(client, intern, sql):
    hook = register(client, intern).get_json()
    path = f"/api/webhooks/{hook['id']}/"
    changed = client.patch(
        path,
        json={"events": ["task.overdue", "task.overdue"], "description": "late ones"},
        headers=intern.headers,
    )
    assert changed.status_code == 200
    assert changed.get_json()["events"] == ["task.overdue"]
    refused = client.patch(path, json={"url": "http://192.168.1.1/"}, headers=intern.headers)
    assert refused.status_code == 400 and "url" in refused.get_json()
    sql("UPDATE webhook SET is_active = false, disabled_reason = 'The receiver answered 410'")
    enabled = client.patch(path, json={"is_active": True}, headers=intern.headers).get_json()
    assert enabled["is_active"] is True and enabled["disabled_reason"] is None
    client.post(path + "ping/", headers=intern.headers)
    assert client.delete(path, headers=intern.headers).status_code == 204
    assert client.get(path, headers=intern.headers).status_code == 404
    assert sql("SELECT count(*) FROM webhook_delivery") == [(0,)]


def test_rotation_gives_a_new_secret_and_keeps_the_old_one_for_a_day(client, intern, sql):
    hook = register(client, intern).get_json()
    rotated = client.post(f"/api/webhooks/{hook['id']}/rotate-secret/", headers=intern.headers)
    assert rotated.status_code == 200
    assert rotated.get_json()["secret"] != hook["secret"]
    assert sql(
        "SELECT count(*) FROM webhook WHERE previous_secret_encrypted IS NOT NULL "
        "AND previous_secret_expires_at IS NOT NULL"
    ) == [(1,)]


def test_ping_deliveries_newest_first_and_redeliver(client, intern, other_intern):
    hook = register(client, intern).get_json()
    base = f"/api/webhooks/{hook['id']}/"
    first = client.post(base + "ping/", headers=intern.headers)
    assert first.status_code == 202
    second = client.post(base + "ping/", headers=intern.headers).get_json()
    page = client.get(base + "deliveries/?page_size=1", headers=intern.headers).get_json()
    assert page["count"] == 2 and page["next"] is not None
    newest = page["results"][0]
    assert newest["id"] == second["id"]
    assert set(newest) == {
        "id",
        "msg_id",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    }
    assert newest["event"] == "webhook.ping" and newest["status"] == "pending"
    again = client.post(
        base + f"deliveries/{first.get_json()['id']}/redeliver/", headers=intern.headers
    )
    assert again.status_code == 202
    assert again.get_json()["msg_id"] == first.get_json()["msg_id"]
    other = register(client, other_intern).get_json()
    foreign = f"/api/webhooks/{other['id']}/deliveries/{second['id']}/redeliver/"
    assert client.post(foreign, headers=other_intern.headers).status_code == 404


def test_task_writes_queue_events_only_when_they_commit(client, intern, make_task, sql):
    """Every committed entry leaves an outbox row in its transaction; refused writes
    (400, 403, 412) leave none."""
    task = make_task(intern)
    assert sql("SELECT count(*) FROM webhook_outbox") == [(1,)]
    path = f"/api/tasks/{task['id']}/"
    assert (
        client.patch(path, json={"priority": "URGENT"}, headers=intern.headers).status_code == 400
    )
    assert client.patch(path, json={"assigned_to": 999}, headers=intern.headers).status_code == 403
    stale = {**intern.headers, "If-Match": '"0-0"'}
    assert client.patch(path, json={"title": "x"}, headers=stale).status_code == 412
    assert sql("SELECT count(*) FROM webhook_outbox") == [(1,)]


def test_delivery_refuses_a_name_that_resolves_to_a_private_address():
    """The check at send time: ``localhost`` is a name, not a literal, so registration
    cannot refuse it; the resolver finds 127.0.0.1 and nothing is sent."""
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        outcome = delivery.send(f"http://localhost:{port}/", "msg_1", "{}", [], 2, [])
        assert outcome.status_code is None and outcome.error.startswith("refused")
        assert receiver.requests == []
        allowed = delivery.send(
            f"http://localhost:{port}/", "msg_1", "{}", [], 2, ["127.0.0.0/8", "::1/128"]
        )
        assert allowed.status_code == 200 and len(receiver.requests) == 1


def test_openapi_documents_the_webhook_paths(client):
    spec = client.get("/api/openapi.json").get_json()
    for path in (
        "/api/webhooks/",
        "/api/webhooks/{webhook_id}/",
        "/api/webhooks/{webhook_id}/rotate-secret/",
        "/api/webhooks/{webhook_id}/ping/",
        "/api/webhooks/{webhook_id}/deliveries/",
        "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver/",
    ):
        assert path in spec["paths"], path


def test_cli_lists_webhooks_and_deliveries_and_redelivers(client, runner, intern):
    hook = register(client, intern, description="cli").get_json()
    ping = client.post(f"/api/webhooks/{hook['id']}/ping/", headers=intern.headers).get_json()
    listed = runner.invoke(args=["webhooks", "list"])
    assert listed.exit_code == 0
    assert f"{hook['id']}\tintern\tactive\t" in listed.output and RECEIVER in listed.output
    assert hook["secret"] not in listed.output
    log = runner.invoke(args=["webhooks", "deliveries", str(hook["id"])])
    assert log.exit_code == 0
    assert f"{ping['id']}\t{ping['msg_id']}\twebhook.ping\tpending" in log.output
    again = runner.invoke(args=["webhooks", "redeliver", str(ping["id"])])
    assert again.exit_code == 0 and ping["msg_id"] in again.output
    page = client.get(f"/api/webhooks/{hook['id']}/deliveries/", headers=intern.headers)
    assert [d["msg_id"] for d in page.get_json()["results"]] == [ping["msg_id"]] * 2
    assert runner.invoke(args=["webhooks", "redeliver", "999"]).exit_code != 0
    assert runner.invoke(args=["webhooks", "deliveries", "999"]).exit_code != 0


def test_patch_without_a_body_changes_nothing(client, intern):
    hook = register(client, intern, description="chat").get_json()
    response = client.patch(f"/api/webhooks/{hook['id']}/", headers=intern.headers)
    assert response.status_code == 200
    assert response.get_json()["description"] == "chat"
