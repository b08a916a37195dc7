"""The whole benchmark in one command: ``bench/run`` (or ``python -m bench``).

1. ``taskapp_bench`` created if missing, schema from the migrations, seeded (COPY);
2. SQL statements per request (in-process, SQLAlchemy events);
3. EXPLAIN (ANALYZE) of every task-list query shape, both roles;
4. HTTP: gunicorn + wrk, the app's endpoints and the bare-Flask ceiling;
5. the overdue sweep beside hand-written SQL, and its peak memory by number of due tasks;
6. optionally (``--profile``) py-spy profiles of the HTTP scenarios.

Prints every table, checks the targets, writes ``bench/results/latest.{json,md}``.
"""

import argparse
import json
import time
from datetime import UTC, date, datetime

from bench import explain, http_bench, inprocess, seed, sweep_bench
from bench.common import RESULTS_DIR, ensure_database, machine_info, table

TARGETS = {
    "seed_s": 120,
    "intern_ratio": 0.25,
    "intern_p99_ms": 30,
    "admin_p99_ms": 100,
    "sweep_ratio": 1.5,
    "sweep_memory_flat_mib": 5,
}


def statement_counts(users: dict) -> list[dict]:
    app = inprocess.make_app()
    from taskapp.extensions import db

    with app.app_context():
        recorder = inprocess.Recorder(db.engine)
    client = inprocess.Client(app, users["admin"], users["intern"])
    task_id = users["intern_task_ids"][len(users["intern_task_ids"]) // 2]
    try:
        rows = inprocess.count_statements(client, recorder, task_id)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        http_bench.cleanup_writes(users["max_task_id"])
    return rows


def counts_report(rows: list[dict]) -> str:
    return table(
        [
            [
                r["endpoint"],
                r["statements"],
                r["round_trips"],
                f"ping {r['pings']}, BEGIN {r['begins']}, COMMIT {r['commits']}, ROLLBACK "
                f"{r['rollbacks']}",
                f"{r['in_process_ms']:.1f}",
            ]
            for r in rows
        ],
        [
            "request",
            "SQL statements",
            "round trips",
            "besides the statements",
            "in-process ms",
        ],
    )


def check_targets(results: dict) -> list[tuple[str, str, bool]]:
    h, s, c = results["http"], results["sweep"], results["statements"]
    checks = []
    if "seed" in results:
        checks.append(
            (
                "seed 1M tasks < 120 s",
                f"{results['seed']['total_s']:.0f} s",
                results["seed"]["total_s"] < TARGETS["seed_s"],
            )
        )
    il = h["intern_list"]
    checks.append(
        (
            "INTERN list >= 25% of bare-Flask req/s",
            f"{il['ratio_to_ceiling']:.1%}",
            il["ratio_to_ceiling"] >= TARGETS["intern_ratio"],
        )
    )
    checks.append(
        (
            "INTERN list p99 < 30 ms @8",
            f"{il['p99_ms']:.1f} ms",
            il["p99_ms"] < TARGETS["intern_p99_ms"],
        )
    )
    al = h["admin_list"]
    checks.append(
        (
            "ADMIN list p99 < 100 ms @8",
            f"{al['p99_ms']:.1f} ms",
            al["p99_ms"] < TARGETS["admin_p99_ms"],
        )
    )
    checks.append(
        (
            "(ADMIN list p99 @1, for reference)",
            f"{h['admin_list_c1']['p99_ms']:.1f} ms",
            h["admin_list_c1"]["p99_ms"] < TARGETS["admin_p99_ms"],
        )
    )
    ratio = s["ratios"]["orm_vs_best_raw"]
    checks.append(
        ("sweep within 1.5x of raw SQL", f"{ratio:.2f}x", ratio <= TARGETS["sweep_ratio"])
    )
    growth = [m["rss_growth_kib"] / 1024 for m in s["memory"]]
    spread = max(growth) - min(growth)
    dues = [m["due"] for m in s["memory"]]
    checks.append(
        (
            f"sweep peak memory flat ({min(dues)}..{max(dues)} due)",
            f"RSS growth {min(growth):.1f}..{max(growth):.1f} MiB",
            spread < TARGETS["sweep_memory_flat_mib"],
        )
    )
    by = {r["endpoint"]: r for r in c}
    for name, low, high in (
        ("INTERN list", 2, 3),
        ("ADMIN list", 2, 3),
        ("INTERN detail", 1, 2),
        ("ADMIN detail", 1, 2),
    ):
        n = by[name]["statements"]
        checks.append((f"{name}: {low}-{high} SQL statements", str(n), low <= n <= high))
    failures = results["explain"]["intern_seq_scan_failures"]
    checks.append(
        (
            "no seq scan of task for INTERN list/detail",
            "none" if not failures else "; ".join(failures),
            not failures,
        )
    )
    errors = {key: sum(r[key]["errors"] for r in h["rounds"]) for key in http_bench.SCENARIOS}
    checks.append(
        (
            "no HTTP errors (all rounds)",
            ", ".join(f"{k} {v}" for k, v in errors.items() if v) or "0",
            not any(errors.values()),
        )
    )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument(
        "--skip-seed",
        action="store_true",
        help="reuse the data if it was seeded with the same sizes",
    )
    parser.add_argument("--duration", type=float, default=12, help="seconds per HTTP scenario")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of HTTP scenarios (best kept)"
    )
    parser.add_argument("--sweep-repeat", type=int, default=3)
    parser.add_argument(
        "--sweep-million", action="store_true", help="also sweep with all 1M tasks due (~2 min)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy profiles of the HTTP scenarios"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    results: dict = {"started": datetime.now(UTC).isoformat(timespec="seconds")}
    md: list[str] = []

    print("== database", flush=True)
    ensure_database()
    current = seed.current_seed()
    if (
        args.skip_seed
        and current
        and current["users"] == args.users
        and current["tasks"] == args.tasks
    ):
        print(f"  reusing seeded data {current}", flush=True)
        results["seed_reused"] = current
    else:
        results["seed"] = seed.seed(args.users, args.tasks)
    results["machine"] = machine_info()
    m = results["machine"]
    machine_line = (
        f"{m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, PostgreSQL {m['postgresql']}, "
        f"Python {m['python']}, kernel {m['kernel']}"
    )
    print("  machine:", machine_line, flush=True)
    md += ["# taskapp benchmark, " + results["started"], "", "Machine: " + machine_line, ""]
    if "seed" in results:
        sd = results["seed"]
        md.append(
            f"Seed: {sd['users']} users + {sd['tasks']} tasks in {sd['total_s']:.1f} s "
            f"(COPY {sd['copy_s']:.1f} s, indexes {sd['indexes_s']:.1f} s, "
            f"VACUUM ANALYZE {sd['vacuum_analyze_s']:.1f} s)\n"
        )

    users = http_bench.bench_users()
    print("== SQL statements per request (in-process)", flush=True)
    results["statements"] = statement_counts(users)
    text = counts_report(results["statements"])
    print(text, flush=True)
    md += ["## SQL statements per request", "", text, ""]

    print("== EXPLAIN of the list query shapes", flush=True)
    today = date.fromisoformat((seed.current_seed() or {}).get("today") or date.today().isoformat())
    results["explain"] = explain.run(users, today)
    text = explain.report(results["explain"])
    print(text, flush=True)
    md += ["## EXPLAIN (ANALYZE) of the list query shapes", "", text, ""]

    print("== HTTP", flush=True)
    results["http"] = http_bench.run(args.duration, args.connections, rounds=args.rounds)
    text = http_bench.report(results["http"])
    print(text, flush=True)
    cfg = results["http"]["config"]
    md += [
        "## HTTP",
        "",
        f"gunicorn {cfg['gunicorn']} for both apps; wrk 1 thread, {cfg['connections']} "
        f"connections, {cfg['seconds']:g} s after {cfg['warmup']:g} s warm-up. INTERN = "
        f"{cfg['intern']} ({cfg['intern_tasks']} tasks, {results['http']['page']['intern_count']} "
        f"PENDING); ADMIN sees {results['http']['page']['admin_count']} PENDING.",
        "",
        text,
        "",
    ]

    print("== overdue sweep", flush=True)
    results["sweep"] = sweep_bench.run(repeat=args.sweep_repeat, million=args.sweep_million)
    text = sweep_bench.report(results["sweep"])
    print(text, flush=True)
    md += ["## Overdue sweep", "", text, ""]

    if args.profile:
        from bench import profile_http

        print("== py-spy profiles", flush=True)
        results["profiles"] = {}
        for name in ("intern_list", "admin_list", "intern_detail", "intern_post"):
            analysis = profile_http.run(name, 10)
            results["profiles"][name] = {k: analysis[k] for k in ("load", "self_by_library")}
            (RESULTS_DIR / f"pyspy-{name}-tree.txt").write_text(
                profile_http.tree(RESULTS_DIR / f"pyspy-{name}.txt")
            )
            print(f"  {name}: self time by library {analysis['self_by_library']}", flush=True)

    checks = check_targets(results)
    text = table(
        [[name, value, "met" if ok else "MISSED"] for name, value, ok in checks],
        ["target", "measured", ""],
    )
    results["targets"] = [{"target": n, "measured": v, "met": ok} for n, v, ok in checks]
    results["elapsed_s"] = time.perf_counter() - started
    print("== targets", flush=True)
    print(text)
    md += ["## Targets", "", text, "", f"Whole run: {results['elapsed_s']:.0f} s"]
    (RESULTS_DIR / "latest.json").write_text(json.dumps(results, indent=1, default=str))
    (RESULTS_DIR / "latest.md").write_text("\n".join(md) + "\n")
    elapsed = results["elapsed_s"]
    print(f"\nwhole run {elapsed:.0f} s; results in bench/results/latest.md and latest.json")


if __name__ == "__main__":
    main()
