"""The overdue job run by a real Celery worker (and beat) over the real Redis broker."""

import pytest
from celery import Celery
from helpers import wait_for

pytestmark = pytest.mark.services


def overdue_count(sql) -> int:
    return sql("SELECT count(*) FROM task WHERE status = 'OVERDUE'")[0][0]


def test_worker_runs_the_sweep_sent_over_redis(start_worker, redis_broker, intern, make_task, sql):
    for n in range(3):
        make_task(intern, title=f"late {n}", due_date="2026-01-01")
    make_task(intern, title="not yet", due_date="2026-02-01")
    log = start_worker(redis_broker).log
    sender = Celery(broker=redis_broker)
    sender.send_task("taskapp.mark_overdue", kwargs={"today": "2026-01-15"})
    assert wait_for(lambda: overdue_count(sql) == 3), log.read_text()
    entries = sql(
        "SELECT count(*), min(source), min(action) FROM activity_log "
        "WHERE action = 'MARKED_OVERDUE'"
    )
    assert entries == [(3, "system", "MARKED_OVERDUE")]
    assert wait_for(lambda: "overdue sweep marked 3 task(s)" in log.read_text()), log.read_text()


def test_beat_fires_the_sweep_on_schedule(start_worker, redis_broker, intern, make_task, sql):
    make_task(intern, title="late", due_date="2020-01-01")
    log = start_worker(redis_broker, beat=True, OVERDUE_SWEEP_INTERVAL_SECONDS="1").log
    assert wait_for(lambda: overdue_count(sql) == 1, timeout=45), log.read_text()
    assert "Scheduler: Sending due task mark-overdue" in log.read_text()
    make_task(intern, title="later", due_date="2020-01-02")
    assert wait_for(lambda: overdue_count(sql) == 2, timeout=30), log.read_text()
    assert sql("SELECT count(*) FROM activity_log WHERE action = 'MARKED_OVERDUE'") == [(2,)]
