"""Receivers that misbehave on purpose: each attempt ends within WEBHOOK_TIMEOUT_SECONDS
as a whole, and no user's webhooks can make another user's wait (a real worker, real
Redis, real receivers on loopback)."""

import pytest
import test_webhooks_delivery as delivery_tests
from drip import DripReceiver
from helpers import wait_for
from test_webhooks_delivery import deliveries

# The fixtures of the delivery tests (a real worker, real Redis, a real receiver).
app = delivery_tests.app
receiver = delivery_tests.receiver
redis_broker = delivery_tests.redis_broker
start_worker = delivery_tests.start_worker

pytestmark = pytest.mark.services
TIMEOUT = 2.0


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
        assert held.held_for < TIMEOUT + 0.5, (mode, held.held_for)

        def recorded(hook=hook):
            return [d for d in deliveries(client, admin, hook) if d["attempts"] == 1]

        [delivery] = wait_for(recorded, 10)
        assert delivery["status"] == "pending" and delivery["last_status_code"] is None
        assert f"no complete answer within {TIMEOUT:g} s" in delivery["last_error"], mode
