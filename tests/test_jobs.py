"""The overdue job run by a real Celery worker (and beat) over the real Redis broker."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from celery import Celery
from helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.services


@pytest.fixture
def broker(redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


@pytest.fixture
def start_worker(database_url, broker, tmp_path):
    """Start ``celery -A wsgi.celery worker`` (optionally with beat) as a real process."""
    processes = []

    def start(*extra: str, **env_overrides: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"worker-{len(processes)}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker,
            "JWT_SECRET_KEY": "worker-test-secret-key-long-enough-32b",
            "TASKAPP_INSTANCE_DIR": str(tmp_path),
            **env_overrides,
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "wsgi.celery",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            *extra,
        ]
        with log.open("w") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        processes.append(process)
        ready = wait_for(lambda: "ready." in log.read_text(), timeout=60)
        assert ready, log.read_text()
        return process, log

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def overdue_count(sql) -> int:
    return sql("SELECT count(*) FROM task WHERE status = 'OVERDUE'")[0][0]


def test_worker_runs_the_sweep_sent_over_redis(start_worker, broker, intern, make_task, sql):
    for n in range(3):
        make_task(intern, title=f"late {n}", due_date="2026-01-01")
    make_task(intern, title="not yet", due_date="2026-02-01")
    _, log = start_worker()
    sender = Celery(broker=broker)
    sender.send_task("taskapp.mark_overdue", kwargs={"today": "2026-01-15"})
    assert wait_for(lambda: overdue_count(sql) == 3), log.read_text()
    entries = sql(
        "SELECT count(*), min(source), min(action) FROM activity_log "
        "WHERE action = 'MARKED_OVERDUE'"
    )
    assert entries == [(3, "system", "MARKED_OVERDUE")]
    assert wait_for(lambda: "overdue sweep marked 3 task(s)" in log.read_text()), log.read_text()


def test_beat_fires_the_sweep_on_schedule(start_worker, intern, make_task, sql):
    make_task(intern, title="late", due_date="2020-01-01")
    _, log = start_worker("--beat", OVERDUE_SWEEP_INTERVAL_SECONDS="1")
    assert wait_for(lambda: overdue_count(sql) == 1, timeout=45), log.read_text()
    assert "Scheduler: Sending due task mark-overdue" in log.read_text()
    make_task(intern, title="later", due_date="2020-01-02")
    assert wait_for(lambda: overdue_count(sql) == 2, timeout=30), log.read_text()
    assert sql("SELECT count(*) FROM activity_log WHERE action = 'MARKED_OVERDUE'") == [(2,)]
