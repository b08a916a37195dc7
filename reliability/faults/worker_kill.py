"""Fault: the Celery worker is killed (SIGKILL) in the middle of an overdue sweep.

A private PostgreSQL is seeded with ``--tasks`` past-due PENDING / IN_PROGRESS tasks
(``INSERT ... SELECT generate_series``) plus control rows that the sweep must not touch
(COMPLETED and past due, due today, due in the future, no due date). A Celery worker
(``--pool=solo``) gets ``taskapp.mark_overdue`` through the Redis broker; as soon as its
sweep statement shows up as active in ``pg_stat_activity`` (and has run a moment), the
worker's whole process group is SIGKILLed.

Then:

1. nothing is half-applied: once PostgreSQL has dropped the dead session, either no task
   is OVERDUE and there is no MARKED_OVERDUE entry, or all of them are, with exactly one
   entry each, and the control rows are untouched;
2. the message is not lost: ``acks_late`` left it in the broker's ``unacked`` hash;
3. redelivery: kombu's Redis transport gives an unacknowledged message back to the queue
   once it is older than ``visibility_timeout`` (``CELERY_VISIBILITY_TIMEOUT`` in
   taskapp/config.py, 900 s). The script ages the message's timestamp in
   ``unacked_index`` past it instead of waiting, starts a fresh worker, and checks
   that the redelivered sweep completes the work exactly: every seeded task OVERDUE
   with version + 1, one MARKED_OVERDUE entry per task, controls untouched;
4. a further sweep changes and logs nothing.
"""

import time
from datetime import UTC, datetime

from celery import Celery

from reliability.faults.checks import ADMIN, PASSWORD, Report
from reliability.infra import Stack, wait_until
from taskapp.config import CELERY_VISIBILITY_TIMEOUT

NAME = "worker-kill"
SWEEP_QUERY = "WITH due AS %"
KILL_AFTER_SECONDS = 0.5
CONTROLS = 1000


def run(
    report: Report, *, pg_port: int, redis_port: int, http_port: int, keep: bool, tasks: int
) -> None:
    with Stack("faults-worker", pg_port=pg_port, redis_port=redis_port, keep=keep) as stack:
        stack.migrate()
        stack.create_user(ADMIN, PASSWORD, "ADMIN")
        _scenario(report, stack, tasks)


def _seed(stack: Stack, n: int, today: str) -> float:
    started = time.monotonic()
    with stack.pg.connect(stack.database) as conn:
        uid = conn.execute("SELECT id FROM user_account WHERE username = %s", [ADMIN]).fetchone()[0]
        args = {"uid": uid, "today": today, "n": n, "c": CONTROLS}
        columns = (
            "INSERT INTO task (title, description, status, priority, due_date, assigned_to_id, "
            "created_by_id, created_at, updated_at, completed_at, version) "
        )
        # The ones the sweep must mark: past due, PENDING or IN_PROGRESS.
        conn.execute(
            columns + "SELECT 'sweep-' || g, '', "
            "CASE WHEN mod(g, 2) = 0 THEN 'PENDING' ELSE 'IN_PROGRESS' END, 1 + mod(g, 3), "
            "%(today)s::date - (1 + mod(g, 30)), %(uid)s, %(uid)s, now(), now(), NULL, 1 "
            "FROM generate_series(1, %(n)s) g",
            args,
        )
        # Controls: completed and past due; due today; due in the future; no due date.
        conn.execute(
            columns
            + "SELECT 'ctl-done-' || g, '', 'COMPLETED', 2, %(today)s::date - 3, %(uid)s, %(uid)s, "
            "now(), now(), now(), 1 FROM generate_series(1, %(c)s) g",
            args,
        )
        for label, due in (
            ("today", "%(today)s::date"),
            ("future", "%(today)s::date + 5"),
            ("nodue", "NULL"),
        ):
            conn.execute(
                columns + f"SELECT 'ctl-{label}-' || g, '', 'PENDING', 2, {due}, %(uid)s, %(uid)s, "
                "now(), now(), NULL, 1 FROM generate_series(1, %(c)s) g",
                args,
            )
        conn.execute("ANALYZE task")
    return time.monotonic() - started


def _state(stack: Stack) -> dict:
    with stack.pg.connect(stack.database) as conn:
        row = conn.execute(
            """SELECT
                 count(*) FILTER (WHERE title LIKE 'sweep-%' AND status = 'OVERDUE'),
                 count(*) FILTER (WHERE title LIKE 'sweep-%' AND status = 'OVERDUE'
                                  AND version = 2),
                 count(*) FILTER (WHERE status = 'OVERDUE'),
                 count(*) FILTER (WHERE title LIKE 'ctl-%' AND version = 1
                                  AND status = CASE WHEN title LIKE 'ctl-done-%' THEN 'COMPLETED'
                                                    ELSE 'PENDING' END)
               FROM task"""
        ).fetchone()
        entries, distinct_tasks, wrong = conn.execute(
            """SELECT count(*), count(DISTINCT task_id),
                      count(*) FILTER (WHERE actor_id IS NOT NULL OR source <> 'system'
                                       OR changes->'status'->>'to' <> 'OVERDUE')
               FROM activity_log WHERE action = 'MARKED_OVERDUE'"""
        ).fetchone()
    return {
        "sweep_overdue": row[0],
        "sweep_overdue_v2": row[1],
        "overdue": row[2],
        "controls_intact": row[3],
        "entries": entries,
        "entry_tasks": distinct_tasks,
        "bad_entries": wrong,
    }


def _fmt(state: dict) -> str:
    return (
        f"OVERDUE tasks {state['overdue']}, MARKED_OVERDUE entries {state['entries']} "
        f"({state['entry_tasks']} distinct tasks), "
        f"controls intact {state['controls_intact']}/{4 * CONTROLS}"
    )


def _sweep_backend(stack: Stack):
    with stack.pg.connect(stack.database) as conn:
        return conn.execute(
            "SELECT pid, extract(epoch FROM now() - query_start)::float FROM pg_stat_activity "
            "WHERE state = 'active' AND query LIKE %s AND pid <> pg_backend_pid()",
            [SWEEP_QUERY],
        ).fetchone()


def _backend_alive(stack: Stack, pid: int) -> bool:
    with stack.pg.connect(stack.database) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            is not None
        )


def _scenario(report: Report, stack: Stack, n: int) -> None:
    today = datetime.now(UTC).date().isoformat()
    seconds = _seed(stack, n, today)
    report.info(
        NAME,
        f"seeded {n} past-due tasks + {4 * CONTROLS} controls in {seconds:.1f} s (today = {today})",
    )
    before = _state(stack)
    report.check(
        NAME,
        "seed: nothing overdue yet",
        before["overdue"] == 0 and before["entries"] == 0,
        _fmt(before),
    )
    broker = Celery("reliability-faults", broker=stack.redis.url)
    broker.conf.broker_connection_retry_on_startup = True
    redis = stack.redis.client()
    try:
        _kill_mid_sweep(report, stack, broker, today)
        _check_after_kill(report, stack, redis, n)
        worker2, final, succeeded = _redeliver(report, stack, redis, n)
        _check_second_sweep(report, stack, broker, worker2, final, today)
        report.info(
            NAME,
            f"the redelivered sweep took {_duration(succeeded)}; without the ageing step the "
            "message would be redelivered after the visibility_timeout of "
            f"{CELERY_VISIBILITY_TIMEOUT} s "
            f"(and beat sends a new sweep every 15 min anyway)",
        )
    finally:
        broker.close()
        redis.close()


def _kill_mid_sweep(report: Report, stack: Stack, broker: Celery, today: str) -> None:
    """Send the sweep, wait for its statement, let it run a moment, SIGKILL the worker,
    and wait for PostgreSQL to drop the orphaned session."""
    worker = stack.celery_worker("sweeper1")
    sent_at = time.monotonic()
    broker.send_task("taskapp.mark_overdue", kwargs={"today": today})
    pid, ran = wait_until(
        lambda: _sweep_backend(stack), 60, "the sweep statement in pg_stat_activity", 0.02
    )
    time.sleep(max(0.0, KILL_AFTER_SECONDS - ran))
    still = _sweep_backend(stack)
    worker.kill()
    killed_at = time.monotonic()
    report.check(
        NAME,
        "worker SIGKILLed while the sweep statement was running",
        still is not None and still[0] == pid and not worker.alive(),
        f"statement active for {still[1] if still else float('nan'):.2f} s when killed "
        f"({killed_at - sent_at:.2f} s after send_task); "
        f"worker exit code {worker.popen.returncode}",
    )
    wait_until(
        lambda: not _backend_alive(stack, pid), 300, "PostgreSQL to drop the dead session", 0.1
    )
    report.info(
        NAME,
        f"PostgreSQL dropped the orphaned session "
        f"{time.monotonic() - killed_at:.2f} s after the kill",
    )


def _check_after_kill(report: Report, stack: Stack, redis, n: int) -> None:
    """All or nothing applied; the message still unacknowledged in Redis."""
    after_kill = _state(stack)
    none = after_kill["overdue"] == 0 and after_kill["entries"] == 0
    every = (
        after_kill["sweep_overdue"] == n == after_kill["overdue"]
        and after_kill["entries"] == n == after_kill["entry_tasks"]
    )
    report.check(
        NAME,
        "nothing half-applied after the kill (all or nothing, entries == OVERDUE tasks)",
        (none or every)
        and after_kill["controls_intact"] == 4 * CONTROLS
        and after_kill["entries"] == after_kill["overdue"],
        ("nothing applied: " if none else "all applied: " if every else "PARTIAL: ")
        + _fmt(after_kill),
    )
    unacked = redis.hlen("unacked")
    queued = redis.llen("celery")
    report.check(
        NAME,
        "the message survived the kill (acks_late: still unacknowledged in Redis)",
        unacked == 1,
        f"unacked {unacked}, queued {queued}",
    )


def _log_line(worker, needle: str) -> str:
    return next((line for line in worker.log_text().splitlines() if needle in line), "")


def _redeliver(report: Report, stack: Stack, redis, n: int):
    """Age the unacked message past the app's visibility_timeout instead of waiting for it,
    start a fresh worker and check that the redelivered sweep completes the work exactly;
    (the worker, the final state, its 'succeeded' log line)."""
    past = time.time() - CELERY_VISIBILITY_TIMEOUT - 60
    aged = {tag: past for tag in redis.zrange("unacked_index", 0, -1)}
    if aged:
        redis.zadd("unacked_index", aged)
    restarted_at = time.monotonic()
    worker2 = stack.celery_worker("sweeper2")

    def done():
        return " succeeded in " in worker2.log_text() or "raised" in worker2.log_text()

    wait_until(done, 300, "the redelivered sweep to finish", 0.2)
    final = _state(stack)
    marked_line = _log_line(worker2, "overdue sweep marked")
    succeeded = _log_line(worker2, " succeeded in ")
    report.check(
        NAME,
        "a fresh worker gets the message again and the sweep completes the work exactly",
        final["sweep_overdue"] == n == final["sweep_overdue_v2"] == final["overdue"]
        and final["entries"] == n == final["entry_tasks"]
        and final["bad_entries"] == 0
        and final["controls_intact"] == 4 * CONTROLS
        and f"marked {n} task(s)" in marked_line,
        f"{_fmt(final)}; every swept task at version 2: {final['sweep_overdue_v2'] == n}; "
        f"redelivered and done {time.monotonic() - restarted_at:.1f} s "
        "after the worker restart; "
        f"worker log: '{marked_line.split('] ')[-1]}', sweep {_duration(succeeded)}",
    )
    report.check(
        NAME,
        "broker empty afterwards (acknowledged)",
        redis.hlen("unacked") == 0 and redis.llen("celery") == 0,
        f"unacked {redis.hlen('unacked')}, queued {redis.llen('celery')}",
    )
    return worker2, final, succeeded


def _check_second_sweep(report: Report, stack: Stack, broker, worker2, final, today) -> None:
    """Idempotent: one more sweep changes and logs nothing."""
    broker.send_task("taskapp.mark_overdue", kwargs={"today": today})
    wait_until(
        lambda: worker2.log_text().count(" succeeded in ") >= 2, 120, "the second sweep", 0.2
    )
    again = _state(stack)
    report.check(
        NAME,
        "a second sweep changes and logs nothing",
        again == final and "marked 0 task(s)" in worker2.log_text(),
        _fmt(again),
    )


def _duration(succeeded_line: str) -> str:
    # "Task taskapp.mark_overdue[...] succeeded in 12.34s: 200000"
    try:
        return f"{float(succeeded_line.split(' succeeded in ')[1].split('s:')[0]):.1f} s"
    except (IndexError, ValueError):
        return "?"
