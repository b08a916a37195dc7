"""Receivers that misbehave on purpose: each attempt ends within WEBHOOK_TIMEOUT_SECONDS
as a whole, and no user's webhooks can make another user's wait (a real worker, real
Redis, real receivers on loopback)."""

import pytest
from drip import DripReceiver
from helpers import wait_for
from test_webhooks_delivery import deliveries, register

pytestmark = pytest.mark.services
TIMEOUT = 2.0


@pytest.fixture
def app(make_app):
    return make_app(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])


@pytest.fixture
def drip():
    with DripReceiver(interval=0.5) as running:
        yield running


def test_a_dripping_receiver_is_cut_at_the_deadline_and_the_attempt_fails(
    client, start_worker, redis_broker, drip, admin, make_task
):
    """A receiver that sends a header line, or a body byte, every half second (so no
    single read ever waits the timeout) is cut when the attempt's total time is up."""
    hooks = {}
    for mode in ("headers", "body", "silent"):
        answer = client.post(
            "/api/webhooks/", json={"url": drip.url(f"/{mode}", mode)}, headers=admin.headers
        )
        assert answer.status_code == 201, answer.get_json()
        hooks[mode] = answer.get_json()
    worker = start_worker(
        redis_broker, WEBHOOK_TIMEOUT_SECONDS=str(TIMEOUT), WEBHOOK_RETRY_SCHEDULE="0,3600"
    )
    make_task(admin, title="one change")

    def cut():
        return all(any(h.cut for h in drip.at(f"/{mode}")) for mode in hooks)

    assert wait_for(cut, 4 * TIMEOUT + 10), worker.log.read_text()[-3000:]
    for mode, hook in hooks.items():
        [held] = drip.at(f"/{mode}")
        assert held.held_for < TIMEOUT + 1, (mode, held.held_for)

        def recorded(hook=hook):
            return [d for d in deliveries(client, admin, hook) if d["attempts"] == 1]

        [delivery] = wait_for(recorded, 10)
        assert delivery["status"] == "pending" and delivery["last_status_code"] is None
        assert f"no complete answer within {TIMEOUT:g} s" in delivery["last_error"], mode


def test_a_user_may_hold_at_most_webhook_max_per_user_webhooks(make_app, make_person):
    """The default cap is 10; the 11th is a 400 that says why and writes nothing; an
    ADMIN is capped too; another user's place is their own; deleting frees a place."""
    client = make_app().test_client()
    intern, other = make_person("hoarder"), make_person("neighbour")

    def post(person, n):
        body = {"url": f"https://hooks.example.com/{n}"}
        return client.post("/api/webhooks/", json=body, headers=person.headers)

    made = [post(intern, n) for n in range(10)]
    assert [answer.status_code for answer in made] == [201] * 10
    refused = post(intern, 10)
    assert refused.status_code == 400
    [message] = refused.get_json()["non_field_errors"]
    assert "WEBHOOK_MAX_PER_USER = 10" in message
    mine = client.get("/api/webhooks/?page_size=100", headers=intern.headers).get_json()
    assert mine["count"] == 10
    assert post(other, 0).status_code == 201
    first = made[0].get_json()["id"]
    assert client.delete(f"/api/webhooks/{first}/", headers=intern.headers).status_code == 204
    assert post(intern, 11).status_code == 201


def test_the_cap_is_a_setting(make_app, make_person):
    client = make_app(WEBHOOK_MAX_PER_USER=2).test_client()
    admin = make_person("chief", role="ADMIN")
    for n in range(2):
        body = {"url": f"https://hooks.example.com/{n}"}
        assert client.post("/api/webhooks/", json=body, headers=admin.headers).status_code == 201
    body = {"url": "https://hooks.example.com/third"}
    answer = client.post("/api/webhooks/", json=body, headers=admin.headers)
    assert answer.status_code == 400 and "non_field_errors" in answer.get_json()


def test_a_users_hanging_receivers_never_delay_another_users_webhook(
    client, start_worker, redis_broker, drip, receiver, intern, other_intern, make_task
):
    """One intern's ten webhooks all hang until the timeout (20 s here); the other
    intern's deliveries all arrive while those are still hanging, and the first intern
    never holds more than four connections at once (outbox.OWNER_IN_FLIGHT)."""
    for n in range(10):
        url = drip.url(f"/hang{n}", "silent")
        answer = client.post("/api/webhooks/", json={"url": url}, headers=intern.headers)
        assert answer.status_code == 201, answer.get_json()
    register(client, other_intern, receiver, "/fine")
    worker = start_worker(redis_broker, WEBHOOK_TIMEOUT_SECONDS="20")
    for n in range(5):
        make_task(intern, title=f"hostile {n}")
    assert wait_for(lambda: len(drip.held) >= 1, 10), worker.log.read_text()[-3000:]
    mine = [make_task(other_intern, title=f"fine {n}")["id"] for n in range(5)]
    arrived = wait_for(lambda: len(receiver.at("/fine")) == 5, 15)
    still_hanging = all(held.cut is None for held in drip.held)
    assert arrived and still_hanging, worker.log.read_text()[-3000:]
    assert sorted(r.json["data"]["task"]["id"] for r in receiver.at("/fine")) == mine
    assert all(r.verified_with for r in receiver.at("/fine"))
    assert len(drip.held) <= 4  # the rest wait their owner's turn
