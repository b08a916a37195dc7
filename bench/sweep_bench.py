"""The overdue sweep on the seeded 1M tasks, beside the same work in hand-written SQL.

How "N due" is made without touching the data: the seed keeps PENDING/IN_PROGRESS tasks
due today or later, so sweeping with a later ``today`` makes exactly the tasks due before
it overdue. For a target N the cut-off date is the first at which at least N such tasks
are due (the exact N is printed).

Each measurement runs in a fresh Python subprocess (so peak memory is the sweep's, not
the leftovers of earlier runs): imports, app and database connection first, then
- wall time of the sweep's statement(s) inside one transaction (``time.perf_counter``);
- peak memory: the process's peak RSS during the sweep minus its RSS just before. The
  kernel's high-water mark is reset first (``5`` written to ``/proc/self/clear_refs``), so
  ``VmHWM`` in ``/proc/self/status`` (the same figure as ``getrusage().ru_maxrss``) is
  the peak of the sweep alone, C allocations such as libpq result buffers included; and
  ``tracemalloc``'s peak of Python allocations during the sweep;
then the transaction is ROLLED BACK, so every run starts from the same data (COMMIT is not
timed, on either side) and ``VACUUM task, activity_log`` clears the dead rows before the
next run.

The contenders, all given the same ``today`` and the same transaction treatment:
- ``orm``: ``taskapp.overdue.sweep(db.session, today)`` in an app context (the code the
  Celery task and ``flask tasks mark-overdue`` run);
- ``raw_two``: two hand-written statements, ``INSERT INTO activity_log ... SELECT ... FROM
  task WHERE <due> FOR UPDATE`` (locks and logs) then ``UPDATE task ... WHERE <due>
  RETURNING id`` (the ids are counted on the server side of the cursor);
- ``raw_cte``: the same two written as one statement, ``WITH marked AS (UPDATE ...
  RETURNING ...) INSERT ... SELECT ... FROM marked``.

    python -m bench.sweep_bench [--target 100000] [--repeat 3] [--memory 10000,200000]
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import date

from bench.common import RESULTS_DIR, ROOT, connect, table

DUE = "due_date < %(today)s AND status IN ('PENDING', 'IN_PROGRESS')"
CHANGES = "jsonb_build_object('status', jsonb_build_object('from', {old}, 'to', 'OVERDUE'))"
RAW_TWO = [
    "INSERT INTO activity_log (task_id, task_title, action, changes, actor_id, source, "
    "assignee_id, created_at) SELECT id, title, 'MARKED_OVERDUE', "
    + CHANGES.format(old="status")
    + ", NULL, 'system', assigned_to_id, now() FROM task WHERE "
    + DUE
    + " FOR UPDATE",
    "UPDATE task SET status = 'OVERDUE', version = version + 1, updated_at = now() WHERE "
    + DUE
    + " RETURNING id",
]
RAW_CTE = (
    "WITH marked AS (UPDATE task SET status = 'OVERDUE', version = task.version + 1, "
    "updated_at = now() FROM (SELECT id, status FROM task WHERE "
    + DUE
    + " FOR UPDATE) AS due WHERE task.id = due.id "
    "RETURNING task.id, task.title, task.assigned_to_id, due.status AS old_status) "
    "INSERT INTO activity_log (task_id, task_title, action, changes, actor_id, source, "
    "assignee_id, created_at) SELECT id, title, 'MARKED_OVERDUE', "
    + CHANGES.format(old="old_status")
    + ", NULL, 'system', assigned_to_id, now() FROM marked"
)
METHODS = ("orm", "raw_two", "raw_cte")


# --- child process: one measured sweep -------------------------------------------------


ALL_DUE_SETUP = (
    "UPDATE task SET status = 'PENDING', due_date = coalesce(due_date, DATE '2020-01-01') "
    "WHERE status NOT IN ('PENDING', 'IN_PROGRESS') OR due_date IS NULL"
)
FAR_FUTURE = date(2100, 1, 1)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _sweep(method: str, session, raw, today: date) -> int:
    """One sweep by ``method`` in the session's open transaction (``raw``: its psycopg
    connection); the number of tasks it marked."""
    if method == "orm":
        from taskapp.tasks import overdue

        return overdue.sweep(session, today)
    with raw.cursor() as cursor:
        if method == "raw_cte":
            cursor.execute(RAW_CTE, {"today": today})
            return cursor.rowcount
        if method != "raw_two":
            raise ValueError(method)
        cursor.execute(RAW_TWO[0], {"today": today})
        logged = cursor.rowcount
        cursor.execute(RAW_TWO[1], {"today": today})
        if logged != cursor.rowcount:
            raise RuntimeError(f"raw_two logged {logged} but marked {cursor.rowcount}")
        return cursor.rowcount


def _measured_sweep(method: str, session, raw, today: date) -> dict:
    """Wall time, peak RSS growth and tracemalloc peak of one sweep."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    rss_before = _status_kib("VmRSS")
    tracemalloc.start()
    start = time.perf_counter()
    rows = _sweep(method, session, raw, today)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = _status_kib("VmHWM")  # peak since the reset
    return {
        "rows": rows,
        "seconds": seconds,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_growth_kib": rss_after - rss_before,
        "tracemalloc_peak_kib": traced_peak / 1024,
    }


def child(method: str, today: date, all_due: bool = False) -> dict:
    from sqlalchemy import text

    from bench.inprocess import make_app

    app = make_app()
    from taskapp.extensions import db
    from taskapp.tasks import overdue  # noqa: F401 (imported before the timing starts)

    with app.app_context():
        session = db.session
        session.execute(text("SELECT 1"))  # connection made and transaction open
        if all_due:  # every task due: same transaction, rolled back with it, not measured
            session.execute(text(ALL_DUE_SETUP))
        raw = session.connection().connection.driver_connection  # psycopg, same transaction
        measured = _measured_sweep(method, session, raw, today)
        logged = session.execute(text("SELECT count(*) FROM activity_log")).scalar_one()
        session.rollback()
    return {"method": method, "today": today.isoformat(), "log_rows": logged, **measured}


# --- parent -------------------------------------------------------------------------


def cutoffs(targets: list[int]) -> dict[int, tuple[date, int]]:
    """For each target N: (today, exact number of tasks that sweep marks)."""
    with connect() as conn:
        histogram = conn.execute(
            "SELECT due_date, count(*) FROM task WHERE status IN ('PENDING', 'IN_PROGRESS') "
            "AND due_date IS NOT NULL GROUP BY due_date ORDER BY due_date"
        ).fetchall()
    out = {}
    for target in targets:
        cumulative = 0
        for day, count in histogram:
            if cumulative >= target:
                out[target] = (day, cumulative)
                break
            cumulative += count
        else:
            last = histogram[-1][0]
            out[target] = (date.fromordinal(last.toordinal() + 1), cumulative)
    return out


def measure(method: str, today: date, all_due: bool = False) -> dict:
    extra = ["--all-due"] if all_due else []
    out = subprocess.run(
        [sys.executable, "-m", "bench.sweep_bench", "--child", method, today.isoformat(), *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"sweep child {method} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    with connect(autocommit=True) as conn:
        conn.execute("VACUUM task")
        conn.execute("VACUUM activity_log")
    return result


MEMORY_KEYS = (
    "seconds",
    "rss_before_kib",
    "rss_after_kib",
    "rss_growth_kib",
    "tracemalloc_peak_kib",
)


def _memory_row(target, due: int, day, result: dict) -> dict:
    return {
        "target": target,
        "due": due,
        "today": day.isoformat(),
        **{key: result[key] for key in MEMORY_KEYS},
    }


def _print_run(result: dict) -> None:
    print(
        f"  {result['method']:<8} {result['seconds']:6.2f} s  rows {result['rows']}  "
        f"peak RSS +{result['rss_growth_kib'] / 1024:.1f} MiB  "
        f"tracemalloc peak {result['tracemalloc_peak_kib']:.0f} KiB",
        flush=True,
    )


def timing_runs(today: date, n_due: int, repeat: int) -> dict[str, list[dict]]:
    """``repeat`` runs of each method, interleaved (the order reversed every other time)."""
    timing: dict[str, list[dict]] = {m: [] for m in METHODS}
    for i in range(repeat):
        for method in METHODS if i % 2 == 0 else tuple(reversed(METHODS)):
            result = measure(method, today)
            if result["rows"] != n_due:
                raise RuntimeError(f"{method} marked {result['rows']}, expected {n_due}")
            timing[method].append(result)
            _print_run(result)
    return timing


def summarise(timing: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Medians and peaks per method, and the ORM's ratios to the raw SQL."""
    summary = {
        m: {
            "median_s": statistics.median(r["seconds"] for r in runs),
            "min_s": min(r["seconds"] for r in runs),
            "rss_growth_kib": max(r["rss_growth_kib"] for r in runs),
            "tracemalloc_peak_kib": max(r["tracemalloc_peak_kib"] for r in runs),
        }
        for m, runs in timing.items()
    }
    orm = summary["orm"]["median_s"]
    raw_two, raw_cte = summary["raw_two"]["median_s"], summary["raw_cte"]["median_s"]
    ratios = {
        "orm_vs_raw_two": orm / raw_two,
        "orm_vs_raw_cte": orm / raw_cte,
        "orm_vs_best_raw": orm / min(raw_two, raw_cte),
    }
    print(
        f"  ORM sweep / raw SQL (medians): {ratios['orm_vs_raw_two']:.2f}x two statements, "
        f"{ratios['orm_vs_raw_cte']:.2f}x one CTE statement",
        flush=True,
    )
    return summary, ratios


def memory_series(targets, days: dict, target: int, timing: dict, all_eligible) -> list[dict]:
    """The ORM sweep's peak memory for each target number of due tasks (the timing runs'
    own worst case for ``target``, a fresh run for the others)."""
    memory = []
    for n in targets:
        day, exact = days[n]
        if n == target:
            result = max(timing["orm"], key=lambda r: r["rss_growth_kib"])
        else:
            result = measure("orm", day)
        memory.append(_memory_row("all eligible" if n == all_eligible else n, exact, day, result))
        print(
            f"  memory, orm, {exact:>7} due: peak RSS +{result['rss_growth_kib'] / 1024:.1f} MiB "
            f"(before {result['rss_before_kib'] / 1024:.1f} MiB, after "
            f"{result['rss_after_kib'] / 1024:.1f} MiB), tracemalloc peak "
            f"{result['tracemalloc_peak_kib']:.0f} KiB, {result['seconds']:.2f} s",
            flush=True,
        )
    return memory


def every_task_due() -> dict:
    """The ORM sweep with every task made due (in the rolled-back transaction)."""
    result = measure("orm", FAR_FUTURE, all_due=True)
    print(
        f"  memory, orm, {result['rows']:>7} due (all tasks made due in the rolled-back "
        f"transaction): peak RSS +{result['rss_growth_kib'] / 1024:.1f} MiB, tracemalloc "
        f"peak {result['tracemalloc_peak_kib']:.0f} KiB, {result['seconds']:.2f} s",
        flush=True,
    )
    return _memory_row("every task", result["rows"], FAR_FUTURE, result)


def run(
    target: int = 100_000,
    repeat: int = 3,
    memory_targets=(10_000, 200_000),
    full: bool = True,
    million: bool = False,
) -> dict:
    with connect() as conn:
        total = conn.execute("SELECT count(*) FROM task").fetchone()[0]
        logs = conn.execute("SELECT count(*) FROM activity_log").fetchone()[0]
    all_eligible = 10**9 if full else None
    targets = sorted({target, *memory_targets} | ({all_eligible} if full else set()))
    days = cutoffs(targets)
    today, n_due = days[target]
    print(
        f"Sweep: {total} tasks, {n_due} due with today={today}; {repeat} runs of each, "
        "interleaved, each in a fresh process, rolled back",
        flush=True,
    )
    timing = timing_runs(today, n_due, repeat)
    summary, ratios = summarise(timing)
    memory = memory_series(targets, days, target, timing, all_eligible)
    if million:
        memory.append(every_task_due())
    return {
        "tasks": total,
        "log_rows_before": logs,
        "due": n_due,
        "today": today.isoformat(),
        "repeat": repeat,
        "runs": timing,
        "summary": summary,
        "ratios": ratios,
        "memory": memory,
    }


def report(result: dict) -> str:
    s = result["summary"]
    rows = [
        [
            m,
            f"{s[m]['median_s']:.2f}",
            f"{s[m]['min_s']:.2f}",
            f"{s[m]['rss_growth_kib'] / 1024:.1f}",
            f"{s[m]['tracemalloc_peak_kib']:.0f}",
            f"{s[m]['median_s'] / s['raw_two']['median_s']:.2f}x",
        ]
        for m in METHODS
    ]
    out = [
        f"{result['due']} due of {result['tasks']} tasks (today={result['today']}), "
        f"median of {result['repeat']}:",
        table(
            rows,
            [
                "method",
                "median s",
                "min s",
                "peak RSS growth MiB",
                "tracemalloc peak KiB",
                "vs raw_two",
            ],
        ),
        "",
        f"ORM sweep peak memory by number of due tasks ({result['tasks']:,}-task table):",
        table(
            [
                [
                    m["due"],
                    f"{m['seconds']:.2f}",
                    f"{m['rss_growth_kib'] / 1024:.1f}",
                    f"{m['rss_after_kib'] / 1024:.1f}",
                    f"{m['tracemalloc_peak_kib']:.0f}",
                ]
                for m in result["memory"]
            ],
            ["due tasks", "sweep s", "peak RSS growth MiB", "peak RSS MiB", "tracemalloc peak KiB"],
        ),
    ]
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        all_due = "--all-due" in sys.argv[4:]
        print(json.dumps(child(sys.argv[2], date.fromisoformat(sys.argv[3]), all_due)))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", default="10000,200000")
    parser.add_argument("--no-full", action="store_true", help="skip the all-eligible run")
    parser.add_argument("--million", action="store_true", help="also sweep with every task due")
    args = parser.parse_args()
    memory = tuple(int(x) for x in args.memory.split(",") if x)
    result = run(args.target, args.repeat, memory, full=not args.no_full, million=args.million)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "sweep.json").write_text(json.dumps(result, indent=1, default=str))
    print(report(result))


if __name__ == "__main__":
    main()
