"""The overdue sweep and POST's INSERT, on the seeded tasks and a minimal copy of ``task``;
bench/README.md, "Sweep and INSERT"."""

import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from bisect import bisect_left
from datetime import date, timedelta
from itertools import accumulate

from bench.common import ROOT, connect, proc_cpu, proc_kib, table

DUE = "due_date < %(today)s AND status IN ('PENDING', 'IN_PROGRESS')"
RAW_TWO = [
    f"""INSERT INTO activity_log
        (task_id, task_title, action, changes, actor_id, source, assignee_id, created_at)
    SELECT id, title, 'MARKED_OVERDUE',
        jsonb_build_object('status', jsonb_build_object('from', status, 'to', 'OVERDUE')),
        NULL, 'system', assigned_to_id, now()
    FROM task WHERE {DUE} FOR UPDATE""",
    f"""UPDATE task SET status = 'OVERDUE', version = version + 1, updated_at = now()
    WHERE {DUE} RETURNING id""",
]
METHODS = ("orm", "minimal", "indexed", "raw_two", "insert", "insert_minimal", "insert_indexed")
INSERTS = 300
MINIMAL = [
    "DROP SCHEMA IF EXISTS bench_minimal CASCADE",
    "CREATE SCHEMA bench_minimal",
    "CREATE TABLE bench_minimal.task (LIKE public.task INCLUDING DEFAULTS)",
    "INSERT INTO bench_minimal.task SELECT * FROM public.task",
    "ALTER TABLE bench_minimal.task ADD PRIMARY KEY (id)",
    "CREATE INDEX ON bench_minimal.task (status, due_date, id)",
    "SELECT setval(pg_get_serial_sequence('public.task', 'id'), max(id)) FROM public.task",
]
INDEXED = [
    "DROP SCHEMA IF EXISTS bench_indexed CASCADE",
    "CREATE SCHEMA bench_indexed",
    "CREATE TABLE bench_indexed.task (LIKE public.task INCLUDING DEFAULTS)",
    "INSERT INTO bench_indexed.task SELECT * FROM public.task",
]
"""The floor under the sweep: a copy of ``task`` with every index ``task`` has (the
listing's ordering indexes among them, which a status change must update: it is never a
HOT update) and none of its triggers (counters, change stamps, search rows)."""
SCHEMAS = {
    "minimal": "bench_minimal",
    "insert_minimal": "bench_minimal",
    "indexed": "bench_indexed",
    "insert_indexed": "bench_indexed",
}


WAL_AND_BACKEND = "SELECT pg_current_wal_insert_lsn(), pg_backend_pid()"
WAL_SINCE = "SELECT pg_current_wal_insert_lsn() - CAST(:before AS pg_lsn)"
"""The write-ahead log a run wrote: what its indexes and full page images cost, which
wall time on a shared machine only estimates."""
SUMMARY_COLUMNS = ["method", "median s", "server CPU s", "WAL MiB", "peak RSS growth MiB"]
SUMMARY_COLUMNS += ["tracemalloc peak KiB"]
ALL_DUE_SETUP = (
    "UPDATE task SET status = 'PENDING', due_date = coalesce(due_date, DATE '2020-01-01') "
    "WHERE status NOT IN ('PENDING', 'IN_PROGRESS') OR due_date IS NULL"
)
FAR_FUTURE = date(2100, 1, 1)


def _sweep(method: str, session, raw, today: date) -> int:
    """One sweep by ``method`` in the open transaction (``raw``: psycopg's); tasks marked."""
    if method.startswith("insert"):
        return _inserts(session)
    if method in ("orm", "minimal", "indexed"):
        from taskapp.tasks import overdue

        return overdue.sweep(session, today)
    with raw.cursor() as cursor:
        cursor.execute(RAW_TWO[0], {"today": today})
        logged = cursor.rowcount
        cursor.execute(RAW_TWO[1], {"today": today})
        if logged != cursor.rowcount:
            raise RuntimeError(f"raw_two logged {logged} but marked {cursor.rowcount}")
        return cursor.rowcount


def _inserts(session) -> int:
    """``INSERTS`` tasks made one at a time as POST makes them (``audit.insert_created``:
    the task and its CREATED entry in one statement)."""
    from sqlalchemy import text

    from taskapp.audit import act_as, insert_created
    from taskapp.models import Source
    from taskapp.tasks.models import Task

    user_id = session.execute(text("SELECT min(id) FROM user_account")).scalar_one()
    act_as(session, user_id, Source.API)
    for n in range(INSERTS):
        task = Task(title=f"write cost {n}", description="measured", priority="HIGH")
        task.assigned_to_id = task.created_by_id = user_id
        insert_created(session, task)
    return INSERTS


def _measured_sweep(method: str, session, raw, today: date) -> dict:
    """Wall time, peak RSS growth and tracemalloc peak of one sweep."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    rss_before = proc_kib("self")
    tracemalloc.start()
    start = time.perf_counter()
    rows = _sweep(method, session, raw, today)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = proc_kib("self", "VmHWM")  # peak since the reset
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
        if method in SCHEMAS:
            session.execute(text(f"SET LOCAL search_path = {SCHEMAS[method]}, public"))
        if all_due:  # every task due: same transaction, rolled back with it, not measured
            session.execute(text(ALL_DUE_SETUP))
        raw = session.connection().connection.driver_connection  # psycopg, same transaction
        wal_before, backend = session.execute(text(WAL_AND_BACKEND)).one()
        cpu_before = proc_cpu(backend)
        measured = _measured_sweep(method, session, raw, today)
        backend_cpu = proc_cpu(backend) - cpu_before
        wal = session.execute(text(WAL_SINCE), {"before": wal_before}).scalar_one()
        logged = session.execute(text("SELECT count(*) FROM activity_log")).scalar_one()
        session.rollback()
    return {
        **{"method": method, "today": today.isoformat(), "log_rows": logged},
        **{"wal_mib": float(wal) / 2**20, "backend_cpu_s": backend_cpu, **measured},
    }


def cutoffs(targets: list[int]) -> dict[int, tuple[date, int]]:
    """For each target N: (today, exact number of tasks that sweep marks)."""
    with connect() as conn:
        histogram = conn.execute(
            "SELECT due_date, count(*) FROM task WHERE status IN ('PENDING', 'IN_PROGRESS') "
            "AND due_date IS NOT NULL GROUP BY due_date ORDER BY due_date"
        ).fetchall()
    days = [day for day, _ in histogram]
    days.append(days[-1] + timedelta(days=1))  # after the last: every eligible task due
    due_before = [0, *accumulate(count for _, count in histogram)]  # due before days[i]
    out = {}
    for target in targets:
        i = min(bisect_left(due_before, target), len(histogram))
        out[target] = (days[i], due_before[i])
    return out


SETTLED = (
    "task",
    "activity_log",
    "task_counter",
    "task_change",
    "task_search",
    "task_search_title",
    "bench_minimal.task",
    "bench_indexed.task",
)
"""The tables a run writes: the rolled-back inserts leave dead rows in the side tables
too, and an unvacuumed task_counter was planned as 17 times its size by later stages."""


def settle() -> None:
    """Every run starts alike: the last run's dead rows vacuumed, then a checkpoint, so
    no run pays for another's dirty pages, and each writes a full page image the first
    time it touches a page (a checkpoint falling at some moment of some runs made the
    same sweep take 5 to 6 s on one table)."""
    with connect(autocommit=True) as conn:
        for name in SETTLED:
            conn.execute(f"VACUUM {name}")
        conn.execute("CHECKPOINT")


def measure(method: str, today: date, all_due: bool = False) -> dict:
    settle()
    extra = ["--all-due"] if all_due else []
    out = subprocess.run(
        [sys.executable, "-m", "bench.sweep_bench", method, today.isoformat(), *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"sweep child {method} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print_run(result: dict, label: str = "") -> None:
    print(
        f"  {label or result['method']:<16} {result['seconds']:6.2f} s  rows {result['rows']}  "
        f"server CPU {result['backend_cpu_s']:5.2f} s  WAL {result['wal_mib']:4.0f} MiB  "
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
            expected = INSERTS if method.startswith("insert") else n_due
            if result["rows"] != expected:
                raise RuntimeError(f"{method} wrote {result['rows']}, expected {expected}")
            timing[method].append(result)
            _print_run(result)
    return timing


def summarise(timing: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Medians and peaks per method, and the ratios of the targets."""
    summary = {
        m: {
            "median_s": statistics.median(r["seconds"] for r in runs),
            "wal_mib": statistics.median(r["wal_mib"] for r in runs),
            "backend_cpu_s": statistics.median(r["backend_cpu_s"] for r in runs),
            "rss_growth_kib": max(r["rss_growth_kib"] for r in runs),
            "tracemalloc_peak_kib": max(r["tracemalloc_peak_kib"] for r in runs),
        }
        for m, runs in timing.items()
    }
    median = {m: v["median_s"] for m, v in summary.items()}
    ratios = {
        "sweep_vs_minimal": median["orm"] / median["minimal"],
        "indexed_vs_minimal": median["indexed"] / median["minimal"],
        "sweep_vs_indexed": median["orm"] / median["indexed"],
        "insert_vs_minimal": median["insert"] / median["insert_minimal"],
        "insert_indexed_vs_minimal": median["insert_indexed"] / median["insert_minimal"],
        "insert_vs_indexed": median["insert"] / median["insert_indexed"],
        "orm_vs_raw_two": median["orm"] / median["raw_two"],
        "server_cpu_sweep_vs_minimal": _cpu_ratio(summary, "orm", "minimal"),
        "server_cpu_indexed_vs_minimal": _cpu_ratio(summary, "indexed", "minimal"),
    }
    print("  ratios (medians):", {k: round(v, 2) for k, v in ratios.items()}, flush=True)
    return summary, ratios


def _cpu_ratio(summary: dict, method: str, baseline: str) -> float:
    """PostgreSQL's CPU for ``method`` over ``baseline``'s (what the wall time, on a
    shared machine, adds waits to)."""
    return summary[method]["backend_cpu_s"] / (summary[baseline]["backend_cpu_s"] or float("nan"))


def memory_series(targets, days: dict, target: int, timing: dict, million: bool) -> list[dict]:
    """The ORM sweep's peak memory for each target number due (``million``: and every task)."""
    memory = []
    runs = [(n, *days[n]) for n in targets] + ([("every task", FAR_FUTURE, 0)] if million else [])
    for n, day, exact in runs:
        if n == target:
            result = max(timing["orm"], key=lambda r: r["rss_growth_kib"])
        else:
            result = measure("orm", day, all_due=n == "every task")
        due = exact or result["rows"]
        _print_run(result, f"memory, {due} due")
        keys = ("seconds", "rss_after_kib", "rss_growth_kib", "tracemalloc_peak_kib")
        memory.append({"due": due, "today": day.isoformat(), **{k: result[k] for k in keys}})
    return memory


def make_copies() -> None:
    """The minimal copy of ``task`` and the indexed one (its indexes built after the rows)."""
    with connect(autocommit=True) as conn:
        for statement in MINIMAL + INDEXED:
            conn.execute(statement)
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'task'"
        ).fetchall()
        for (definition,) in indexes:
            conn.execute(definition.replace(" ON public.task ", " ON bench_indexed.task "))
        conn.execute("VACUUM ANALYZE bench_minimal.task")
        conn.execute("VACUUM ANALYZE bench_indexed.task")


def run(target=100_000, repeat=3, memory_targets=(10_000, 200_000), million=False) -> dict:
    with connect() as conn:
        total = conn.execute("SELECT count(*) FROM task").fetchone()[0]
    targets = sorted({target, *memory_targets, 10**9})  # 10**9: every eligible task
    days = cutoffs(targets)
    today, n_due = days[target]
    print(f"Sweep: {total} tasks, {n_due} due with today={today}; {repeat} runs", flush=True)
    try:
        make_copies()
        timing = timing_runs(today, n_due, repeat)
        summary, ratios = summarise(timing)
        memory = memory_series(targets, days, target, timing, million)
        settle()  # the last run's dead rows, before the stages that follow
    finally:
        with connect(autocommit=True) as conn:
            conn.execute(MINIMAL[0])
            conn.execute(INDEXED[0])
    return {
        **{"tasks": total, "due": n_due, "today": today.isoformat(), "repeat": repeat},
        **{"runs": timing, "summary": summary, "ratios": ratios, "memory": memory},
    }


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def _summary_row(method: str, summary: dict) -> list:
    peaks = [_mib(summary["rss_growth_kib"]), int(summary["tracemalloc_peak_kib"])]
    cost = [f"{summary['backend_cpu_s']:.2f}", f"{summary['wal_mib']:.0f}"]
    return [method, f"{summary['median_s']:.3f}", *cost, *peaks]


def report(result: dict) -> str:
    """Each method's median and peaks, then the ORM sweep's memory by number due."""
    rows = [_summary_row(method, summary) for method, summary in result["summary"].items()]
    memory = [
        [m["due"], f"{m['seconds']:.2f}", _mib(m["rss_growth_kib"]), _mib(m["rss_after_kib"])]
        for m in result["memory"]
    ]
    ratios = ", ".join(f"{k} {v:.2f}x" for k, v in result["ratios"].items())
    head = f"{result['due']} due of {result['tasks']} tasks (today={result['today']}), "
    head += f"{INSERTS} inserts; medians of {result['repeat']}: {ratios}"
    return "\n".join(
        [
            head,
            table(rows, SUMMARY_COLUMNS),
            "\nORM sweep peak memory by number of due tasks:",
            table(memory, ["due", "sweep s", "RSS growth MiB", "peak RSS MiB"]),
        ]
    )


if __name__ == "__main__":  # one measured sweep, in a fresh process (see measure)
    method, today, *flags = sys.argv[1:]
    print(json.dumps(child(method, date.fromisoformat(today), "--all-due" in flags)))
