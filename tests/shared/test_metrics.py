"""GET /metrics during a real run: gunicorn with two workers, a Celery worker and beat
sharing PROMETHEUS_MULTIPROC_DIR, webhooks to a real receiver, the overdue and reminder
sweeps, reminder mail to a real SMTP server that is down, then up. Scraped with
prometheus_client's own parser; every family must exist and move as the run does."""

import http.client
import json
import os
import socket
import threading
import time

import pytest
import redis
from aiosmtpd.controller import Controller
from helpers import PASSWORD, create_user, wait_for
from prometheus_client.parser import text_string_to_metric_families
from receiver import Receiver
from services import PRODUCTION, Processes

from taskapp.models import Role

pytestmark = pytest.mark.services
TOKEN = "metrics-token-for-the-test-0123456789"
PAST = "2020-01-01T00:00:00Z"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


def call(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(
            method,
            path,
            body=payload,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), data
    finally:
        conn.close()


def scrape(port, headers=None) -> dict[str, dict]:
    """{family name: {(sample name, labels as sorted tuple): value}}"""
    status, answer, body = call(
        port, "GET", "/metrics", headers=headers or {"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200, body
    assert answer["Content-Type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(body.decode()):
        families[family.name] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
        }
    return families


def total(families, name, sample=None, **labels) -> float:
    """Sum of a family's samples named ``sample`` (default: the family's counter or
    count sample) whose labels include ``labels``."""
    found = families.get(name, {})
    wanted = sample or next(
        (s for s in (name + "_total", name + "_count", name) if any(k[0] == s for k in found)),
        name,
    )
    return sum(
        value
        for (sample_name, sample_labels), value in found.items()
        if sample_name == wanted and set(labels.items()) <= set(sample_labels)
    )


@pytest.fixture
def run(tmp_path, database_url, redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    smtp_port = free_port()
    env = {
        **PRODUCTION,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,  # the rate limits, shared by gunicorn's workers
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": TOKEN,
        "LOGIN_RATE_LIMIT": "3 per minute",
        "PAT_RATE_LIMIT": "2 per minute",
        "OVERDUE_SWEEP_INTERVAL_SECONDS": "1",
        "REMINDER_SWEEP_INTERVAL_SECONDS": "1",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "WEBHOOK_DISABLE_AFTER_SECONDS": "3600",
    }
    processes = Processes(tmp_path, env)
    processes.smtp_port = smtp_port
    yield processes
    processes.stop()


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def test_metrics_is_off_unless_enabled(client):
    assert client.get("/metrics").status_code == 404


def test_production_needs_the_token_or_an_allowed_network(make_app):
    production = {
        "TASKAPP_ENV": "production",
        "TRUSTED_HOSTS": ["localhost"],
        "WEBHOOK_SECRET_KEY": PRODUCTION["WEBHOOK_SECRET_KEY"],
        "METRICS_ENABLED": True,
    }
    with pytest.raises(RuntimeError, match="METRICS_TOKEN"):
        make_app(**production)
    app = make_app(**production, METRICS_TOKEN=TOKEN)
    client = app.test_client()
    local = {"Host": "localhost"}
    assert client.get("/metrics", headers=local).status_code == 401
    wrong = {**local, "Authorization": "Bearer nope"}
    assert client.get("/metrics", headers=wrong).status_code == 401
    right = {**local, "Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", headers=right).status_code == 200
    app = make_app(**production, METRICS_ALLOWED_NETWORKS=["127.0.0.0/8"])
    assert app.test_client().get("/metrics", headers=local).status_code == 200
    app = make_app(**production, METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"])
    assert app.test_client().get("/metrics", headers=local).status_code == 401


def _drive_the_api(port, receiver, intern_id) -> dict:
    """The API, before any worker runs: the outbox and the broker's queue fill up."""
    status, _, body = call(
        port, "POST", "/api/auth/login/", {"username": "boss", "password": PASSWORD}
    )
    boss = {"Authorization": f"Bearer {json.loads(body)['access']}"}
    hooks = {}
    for path, script in (("/ok", []), ("/flaky", [500]), ("/gone", [410])):
        receiver.script(path, script)
        status, _, body = call(port, "POST", "/api/webhooks/", {"url": receiver.url(path)}, boss)
        assert status == 201, body
        hooks[path] = json.loads(body)
        receiver.trust(path, hooks[path]["secret"])
    for n in range(3):
        status, _, _ = call(
            port,
            "POST",
            "/api/tasks/",
            {"title": f"late {n}", "due_date": "2020-01-01", "assigned_to": intern_id},
            boss,
        )
        assert status == 201
    call(
        port,
        "POST",
        "/api/tasks/",
        {"title": "remind", "remind_at": PAST, "assigned_to": intern_id},
        boss,
    )
    for _ in range(4):
        call(port, "POST", "/api/auth/login/", {"username": "intern", "password": "wrong"})
    status, _, body = call(
        port, "POST", "/api/auth/login/", {"username": "boss", "password": PASSWORD}
    )
    spare = json.loads(body)
    status, _, _ = call(
        port,
        "POST",
        "/api/auth/logout/",
        {"refresh": spare["refresh"]},
        {"Authorization": f"Bearer {spare['access']}"},
    )
    assert status == 204
    status, _, body = call(
        port, "POST", "/api/auth/tokens/", {"name": "ci", "scopes": ["tasks:read"]}, boss
    )
    pat = {"Authorization": f"Bearer {json.loads(body)['token']}"}
    statuses = [call(port, "GET", "/api/tasks/", None, pat)[0] for _ in range(3)]
    assert statuses[-1] == 429
    call(port, "GET", "/api/nowhere/")
    assert wait_for(lambda: total(scrape(port), "taskapp_broker_queue_length") > 0, timeout=30)
    waiting = scrape(port)
    assert total(waiting, "taskapp_outbox_pending") >= 4
    return waiting


def _let_the_worker_run(run, port, receiver, sampling, sampler):
    """The worker: relays, delivers (ok, retried, failed and disabled), sweeps, mails (the
    mail server is down at first: failed; then up: sent). Returns the last scrape."""
    worker = run.celery("worker")
    assert wait_for(lambda: len(receiver.at("/flaky")) >= 2, timeout=60), worker.log.read_text()[
        -3000:
    ]
    assert wait_for(
        lambda: total(scrape(port), "taskapp_reminder_mails", outcome="failed") > 0, timeout=60
    )
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=run.smtp_port)
    controller.start()
    try:
        assert wait_for(lambda: inbox.envelopes, timeout=90), worker.log.read_text()[-3000:]
        after = wait_for(
            lambda: (
                (s := scrape(port))
                and total(s, "taskapp_reminder_mails", outcome="sent") > 0
                and total(s, "taskapp_outbox_pending") == 0
                and s
            ),
            timeout=60,
        )
    finally:
        controller.stop()
        sampling.set()
        sampler.join()
    return after, worker


def _assert_every_family_moved(before: dict, after: dict) -> None:
    """Every counter and histogram family grew during the run, by the amounts the run
    caused; the gauges computed at scrape time, and the pool's, exist."""
    moved = {
        "taskapp_http_requests": {},
        "taskapp_http_request_duration_seconds": {},
        "taskapp_login_failures": {},
        "taskapp_tokens_revoked": {},
        "taskapp_webhook_delivery_lag_seconds": {},
        "taskapp_overdue_sweep_duration_seconds": {},
        "taskapp_overdue_marked": {},
        "taskapp_reminder_sweep_duration_seconds": {},
        "taskapp_reminders_announced": {},
        "taskapp_jobs": {},
        "taskapp_job_duration_seconds": {},
    }
    for name, labels in moved.items():
        assert total(after, name, **labels) > total(before, name, **labels), name
    for outcome in ("succeeded", "retried", "failed", "disabled"):
        assert total(after, "taskapp_webhook_deliveries", outcome=outcome) >= 1, outcome
    for outcome in ("sent", "failed"):
        assert total(after, "taskapp_reminder_mails", outcome=outcome) >= 1, outcome
    assert total(after, "taskapp_overdue_marked") == 3
    assert total(after, "taskapp_rate_limited", limit="login_username") >= 1
    assert total(after, "taskapp_rate_limited", limit="personal_token") == 1
    assert (
        total(after, "taskapp_http_requests", route="/api/tasks/", method="POST", status="201") == 4
    )
    assert total(after, "taskapp_http_requests", route="<unmatched>", status="404") >= 1
    assert total(after, "taskapp_http_request_duration_seconds", route="/api/tasks/") >= 4
    for gauge in (
        "taskapp_outbox_pending",
        "taskapp_webhook_pending_deliveries",
        "taskapp_broker_queue_length",
        "taskapp_db_pool_in_use",
        "taskapp_db_pool_overflow",
        "taskapp_db_pool_waits",
    ):
        assert gauge in after, gauge


def test_every_family_exists_and_moves_during_a_real_run(app, run, receiver):
    create_user(app, "boss", Role.ADMIN)
    intern_id = create_user(app, "intern", Role.INTERN)
    beat = run.celery("beat")
    _, port = run.gunicorn(WEB_CONCURRENCY="2")
    before = scrape(port)
    samples, sampling = [], threading.Event()
    started = time.monotonic()

    def sample():
        while not sampling.wait(0.5):
            samples.append((time.monotonic() - started, scrape(port)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    waiting = _drive_the_api(port, receiver, intern_id)
    after, worker = _let_the_worker_run(run, port, receiver, sampling, sampler)
    assert after, worker.log.read_text()[-3000:]
    if os.environ.get("METRICS_PNG"):
        from metrics_plot import plot

        plot(samples, os.environ["METRICS_PNG"])
    assert beat.poll() is None

    _assert_every_family_moved(before, after)
    assert total(waiting, "taskapp_outbox_pending") > total(after, "taskapp_outbox_pending") == 0
    # two gunicorn workers answered: their counts are added up, whichever one is scraped
    seen = [total(scrape(port), "taskapp_http_requests", route="/metrics") for _ in range(4)]
    assert seen == [seen[0] + n for n in range(4)]
