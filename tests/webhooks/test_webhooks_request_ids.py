"""The webhook message of an activity-log entry carries the request id that wrote it, so
a receiver can quote it (a real worker over real Redis, a real receiver)."""

import pytest
from helpers import wait_for
from test_webhooks_delivery import register

pytestmark = pytest.mark.services


@pytest.fixture
def app(make_app):
    return make_app(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])


def test_the_webhook_message_carries_the_request_id(
    client, admin, receiver, start_worker, redis_broker
):
    register(client, admin, receiver, "/hook", events=["task.created"])
    start_worker(redis_broker)
    client.post(
        "/api/tasks/", json={"title": "hi"}, headers={**admin.headers, "X-Request-ID": "w-9"}
    )
    assert wait_for(lambda: receiver.requests, timeout=60)
    message = receiver.requests[0].json
    assert message["type"] == "task.created"
    assert message["data"]["request_id"] == "w-9"
