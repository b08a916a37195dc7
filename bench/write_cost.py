"""What migration 0007's indexes and change-counter triggers cost the writes, measured
A/B on the same data in the same minutes: each run is one transaction that (variant
``without``) first drops 0007's task indexes and task_change triggers, then times the
overdue sweep of ~100k due tasks and 300 single-task inserts made as POST makes them
(ORM flush + audit row + triggers), and rolls everything back (DROP INDEX is
transactional in PostgreSQL). Variants alternate; medians are compared.

    python -m bench.write_cost [--repeat 3]
"""

import argparse
import statistics
import time
from datetime import date

from sqlalchemy import text

from bench.inprocess import make_app

INDEXES = (
    "ix_task_title",
    "ix_task_priority",
    "ix_task_open_priority_due",
    "ix_task_due",
    "ix_task_updated",
    "ix_task_status",
    "ix_task_title_trgm",
    "ix_task_description_trgm",
)
TRIGGERS = ("task_change_insert", "task_change_update", "task_change_delete")
INSERTS = 300


def _drop_0007(session, variant: str) -> None:
    """``without``: every 0007 index and trigger; ``btree_only``: the trigram indexes."""
    for name in INDEXES:
        if variant == "without" or name.endswith("_trgm"):
            session.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for name in TRIGGERS if variant == "without" else ():
        session.execute(text(f"DROP TRIGGER IF EXISTS {name} ON task"))


def one_run(app, variant: str, today: date) -> dict:
    from taskapp.audit import act_as
    from taskapp.extensions import db
    from taskapp.models import Source, Task
    from taskapp.tasks import overdue

    with app.app_context():
        session = db.session
        try:
            if variant != "with":
                _drop_0007(session, variant)
            user_id = session.execute(text("SELECT min(id) FROM user_account")).scalar_one()
            act_as(session, user_id, Source.API)
            started = time.perf_counter()
            for n in range(INSERTS):
                task = Task(title=f"write cost {n}", description="measured", priority="HIGH")
                task.assigned_to_id = task.created_by_id = user_id
                session.add(task)
                session.flush()
            inserts = (time.perf_counter() - started) / INSERTS * 1000
            started = time.perf_counter()
            swept = overdue.mark_overdue(session, today)
            sweep = time.perf_counter() - started
        finally:
            session.rollback()
    return {"variant": variant, "insert_ms": inserts, "sweep_s": sweep, "swept": swept}


def run(repeat: int = 3, today: date | None = None, variants=("without", "with")) -> dict:
    from bench.seed import current_seed

    if today is None:
        seed = current_seed() or {}
        base = date.fromisoformat(seed["today"]) if seed.get("today") else date.today()
        today = base.replace(year=base.year + 1) if base.month != 2 or base.day != 29 else base
    app = make_app()
    runs = [one_run(app, variant, today) for _ in range(repeat) for variant in variants]
    summary = {}
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "insert_ms": statistics.median(r["insert_ms"] for r in mine),
            "sweep_s": statistics.median(r["sweep_s"] for r in mine),
            "swept": mine[0]["swept"],
        }
    for key in ("insert_ms", "sweep_s"):
        summary[f"{key}_ratio"] = summary[variants[-1]][key] / summary[variants[0]][key]
    return {"runs": runs, "summary": summary, "today": today.isoformat()}


def report(result: dict) -> str:
    s = result["summary"]
    if "with" not in s or "without" not in s:
        return "\n".join(f"  {k}: {v}" for k, v in s.items())
    return (
        f"writes with / without migration 0007 (medians, same data, alternating):\n"
        f"  insert (ORM flush + audit row + triggers): {s['with']['insert_ms']:.3f} ms vs "
        f"{s['without']['insert_ms']:.3f} ms = {s['insert_ms_ratio']:.2f}x\n"
        f"  overdue sweep of {s['with']['swept']:,} tasks: {s['with']['sweep_s']:.2f} s vs "
        f"{s['without']['sweep_s']:.2f} s = {s['sweep_s_ratio']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--today", type=date.fromisoformat)
    parser.add_argument("--variants", default="without,with", help="also: btree_only")
    args = parser.parse_args()
    result = run(args.repeat, args.today, tuple(args.variants.split(",")))
    for r in result["runs"]:
        print(f"  {r['variant']:<8} insert {r['insert_ms']:.3f} ms  sweep {r['sweep_s']:.2f} s")
    print(report(result))


if __name__ == "__main__":
    main()
