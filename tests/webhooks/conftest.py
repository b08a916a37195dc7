"""Fixtures of the webhook delivery tests: a real receiver on loopback and the suite's
real Celery worker with seconds-scale webhook settings."""

import pytest
from receiver import Receiver

TEST_SETTINGS = {
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_RETRY_SCHEDULE": "0,1,2",
    "WEBHOOK_RELAY_INTERVAL_SECONDS": "0.3",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
    "WEBHOOK_DISABLE_AFTER_SECONDS": "2.5",
}
"""Seconds, not hours: attempt 2 one second after attempt 1, attempt 3 two after that."""


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def start_worker(start_worker):
    """conftest's worker, with beat inside and the seconds-scale settings above."""

    def start(broker: str, *, beat: bool = True, **settings: str):
        return start_worker(broker, beat=beat, **{**TEST_SETTINGS, **settings})

    return start
