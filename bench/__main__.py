"""The whole benchmark in one command (``bench/run``, ``python -m bench``): bench/README.md."""

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from bench import explain, http_bench, inprocess, plumbing, seed, server_behaviours, sweep_bench
from bench.common import (
    DATABASE_ENV,
    FULL_DATABASE,
    RESULTS_DIR,
    SMOKE_DATABASE,
    ensure_database,
    exclusive_run,
    machine_info,
    table,
    use_database,
    verdict,
)

TARGETS = {"seed_s": 120, "sweep_memory_flat_mib": 5}
FULL = {"users": 200, "tasks": 1_000_000, "duration": 12, "warmup": 3, "rounds": 3}
FULL |= {"patience": 30, "sweep_target": 100_000, "sweep_repeat": 3}
FULL |= {"sweep_memory": (10_000, 200_000), "timed_requests": 50, "lock_patience": 900}
FULL |= {"plumbing_rounds": 15, "plumbing_requests": 200}
SMOKE = {"users": 10, "tasks": 4_000, "duration": 2, "warmup": 0, "rounds": 1, "patience": 0}
SMOKE |= {"sweep_target": 300, "sweep_repeat": 1, "sweep_memory": ()}
SMOKE |= {"timed_requests": 5, "lock_patience": 180, "plumbing_rounds": 2, "plumbing_requests": 5}
"""Smoke: ~400 tasks per user (EXPLAIN reaches page 10); sweep memory at 300 and ~1,600 due."""


@dataclass
class Run:
    """One run's settings, its results (``latest.json``) and its Markdown (``latest.md``)."""

    args: argparse.Namespace
    sizes: dict
    results: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)  # http_bench.bench_users()
    md: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The result files' name: ``latest``, ``smoke``, or the stages of ``--only``."""
        return (
            "+".join(self.args.only) if self.args.only else "smoke" if self.args.smoke else "latest"
        )

    def section(self, title: str, text: str, intro: str = "") -> None:
        print(text, flush=True)
        self.md += [f"## {title}", "", *([intro, ""] if intro else []), text, ""]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every stage briefly (bench/smoke)")
    parser.add_argument("--database", help="a taskapp_bench* database of one's own")
    parser.add_argument("--users", type=int, help="users to seed (200; smoke 10)")
    parser.add_argument("--tasks", type=int, help="tasks to seed (1000000; smoke 4000)")
    parser.add_argument("--skip-seed", action="store_true", help="reuse data of the same sizes")
    parser.add_argument("--duration", type=float, help="seconds per HTTP scenario (12; smoke 2)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, help="rounds of HTTP scenarios, medians (3)")
    parser.add_argument("--sweep-repeat", type=int, help="sweep runs per method (3; smoke 1)")
    parser.add_argument("--sweep-target", type=int, help="due tasks to sweep (100000; smoke 300)")
    parser.add_argument("--sweep-million", action="store_true", help="also sweep every task due")
    parser.add_argument("--profile", action="store_true", help="py-spy of the HTTP scenarios")
    parser.add_argument("--server", choices=sorted(http_bench.SERVERS), default="gunicorn")
    parser.add_argument("--before", type=Path, help="a checkout to compare with (HTTP stage)")
    parser.add_argument("--warmup", type=float, help="seconds of wrk before each HTTP scenario")
    parser.add_argument("--patience", type=float, help="max s to wait for a quiet machine (30)")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        help=f"some stages, on the data already seeded: {','.join([*STAGES][1:])}",
    )
    args = parser.parse_args(argv)
    if not set(args.only or ()) <= set(STAGES) - {"database"}:
        parser.error(f"--only: one or more of {', '.join([*STAGES][1:])}")
    return args


def sizes_of(args: argparse.Namespace) -> dict:
    """The mode's defaults (``FULL`` or ``SMOKE``), overridden by the options given."""
    sizes = dict(SMOKE if args.smoke else FULL)
    given = {key: getattr(args, key, None) for key in sizes}
    return sizes | {key: value for key, value in given.items() if value is not None}


def stage_database(run: Run) -> None:
    sizes, results = run.sizes, run.results
    ensure_database()
    current = seed.current_seed()
    same = current and (current["users"], current["tasks"]) == (sizes["users"], sizes["tasks"])
    if (current and run.args.only) or (run.args.skip_seed and same):
        print(f"  reusing seeded data {current}", flush=True)
        results["seed_reused"] = current
    else:
        results["seed"] = seed.seed(sizes["users"], sizes["tasks"])
    results["machine"] = m = machine_info()
    machine_line = (
        f"{m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, PostgreSQL {m['postgresql']}, "
        f"Python {m['python']}, kernel {m['kernel']}"
    )
    print("  machine:", machine_line, flush=True)
    title = "taskapp benchmark smoke run" if run.args.smoke else "taskapp benchmark"
    run.md += [f"# {title}, {results['started']}", "", "Machine: " + machine_line, ""]
    if "seed" in results:
        sd = results["seed"]
        run.md.append(
            f"Seed: {sd['users']} users + {sd['tasks']} tasks in {sd['total_s']:.1f} s "
            f"(COPY {sd['copy_s']:.1f} s, indexes {sd['indexes_s']:.1f} s, "
            f"VACUUM ANALYZE {sd['vacuum_analyze_s']:.1f} s)\n"
        )
    run.users = http_bench.bench_users()


def stage_statements(run: Run) -> None:
    profiles = RESULTS_DIR if run.args.profile else None  # pyinstrument's, in-process
    rows = inprocess.run(run.users, run.sizes["timed_requests"], profiles)
    run.results["statements"] = rows
    run.section("SQL statements per request", inprocess.report(rows))


def stage_explain(run: Run) -> None:
    today = date.fromisoformat((seed.current_seed() or {}).get("today") or date.today().isoformat())
    run.results["explain"] = explain.run(run.users, today)
    text = explain.report(run.results["explain"])
    run.section("EXPLAIN (ANALYZE) of the list query shapes", text)


def stage_http(run: Run) -> None:
    sizes = run.sizes
    http_bench.ensure_wrk()
    timing = {key: sizes[key] for key in ("warmup", "rounds", "patience")}
    timing["seconds"] = sizes["duration"]
    args = run.args
    run.results["http"] = h = http_bench.run(timing, args.connections, args.server, args.before)
    cfg = h["config"]
    intro = (
        f"{cfg['server']}, the same for taskapp and the ladder; wrk 1 thread, "
        f"{cfg['connections']} connections, {cfg['seconds']:g} s after {cfg['warmup']:g} s "
        f"warm-up, medians of {cfg['rounds']} interleaved rounds. INTERN = {cfg['intern']} "
        f"({cfg['tasks']} tasks, {h['page']['intern_count']} PENDING)."
    )
    run.section("HTTP: taskapp and the ladder", http_bench.report(h), intro)
    run.problems += [
        f"HTTP round {n}, {key}: {r['raw']}"
        for n, this_round in enumerate(h["rounds"], 1)
        for key, r in this_round.items()
        if r["requests"] == 0 or r["errors"] - r["timeouts"]
    ]


def stage_plumbing(run: Run) -> None:
    sizes = run.sizes
    result = plumbing.run(run.users, sizes["plumbing_rounds"], sizes["plumbing_requests"])
    run.results["plumbing"] = result
    run.section("The plumbing, piece by piece (in-process)", plumbing.report(result))


def stage_sweep(run: Run) -> None:
    sizes = run.sizes
    run.results["sweep"] = sweep_bench.run(
        target=sizes["sweep_target"],
        repeat=sizes["sweep_repeat"],
        memory_targets=sizes["sweep_memory"],
        million=run.args.sweep_million,
    )
    run.section("Overdue sweep", sweep_bench.report(run.results["sweep"]))


def stage_servers(run: Run) -> None:
    run.results["servers"] = server_behaviours.run()
    intro = (
        "gunicorn as deployed (gunicorn.conf.py, 2 sync workers) and granian (WSGI, 2 workers "
        "x 4 threads), behind-the-edge settings; CPU and p99: `bench/run --server granian`."
    )
    run.section("Server behaviours", server_behaviours.report(run.results["servers"]), intro)


def stage_profiles(run: Run) -> None:
    from bench import profile_http

    run.results["profiles"] = {}
    for name in ("intern_list", "admin_list", "intern_detail", "intern_post"):
        analysis = profile_http.run(run.users, name, 10)
        run.results["profiles"][name] = {k: analysis[k] for k in ("load", "self_by_library")}
        (RESULTS_DIR / f"pyspy-{name}-tree.txt").write_text(
            profile_http.tree(RESULTS_DIR / f"pyspy-{name}.txt")
        )
        print(f"  {name}: self time by library {analysis['self_by_library']}", flush=True)
        for frame, share in analysis["inclusive"][:20]:
            print(f"  {share:6.1%}  {frame[:150]}")


STAGES = {
    "database": ("database", stage_database),
    "statements": ("SQL statements per request (in-process)", stage_statements),
    "explain": ("EXPLAIN of the list query shapes", stage_explain),
    "http": ("HTTP", stage_http),
    "plumbing": ("the per-request plumbing, piece by piece", stage_plumbing),
    "sweep": ("overdue sweep", stage_sweep),
    "servers": ("what each server keeps besides speed", stage_servers),
    "profile": ("py-spy profiles", stage_profiles),
}


def stages_of(args: argparse.Namespace) -> list[tuple[str, object]]:
    """Every stage (py-spy only with ``--profile``, the server probes not in a smoke run),
    or the database and those ``--only`` names."""
    left_out = set() if args.profile else {"profile"}
    left_out |= {"servers"} if args.smoke else set()
    keys = ["database", *args.only] if args.only else [k for k in STAGES if k not in left_out]
    return [STAGES[key] for key in keys]


def seed_targets(results: dict) -> list[tuple[str, str, bool]]:
    if "seed" not in results:
        return []
    total, tasks = results["seed"]["total_s"], results["seed"]["tasks"]
    tasks = f"{tasks // 1_000_000}M" if tasks % 1_000_000 == 0 else f"{tasks:,}"
    return [(f"seed {tasks} tasks < 120 s", f"{total:.0f} s", total < TARGETS["seed_s"])]


def http_targets(h: dict) -> list[tuple[str, str, bool]]:
    """The issue's ratios to the ladder, POST against Django's, and no HTTP errors."""
    plumbed = http_bench.floor_ratios(h)
    floors = {k: f" ({v:.2f}x the step in taskapp's plumbing)" for k, v in plumbed.items()}
    checks = [
        (
            f"{row[0]} <= {target}x its step ({row[2]})",
            row[4] + floors.get(key, ""),
            float(row[4][:-1]) <= target,
        )
        for row, (key, (*_, target)) in zip(
            http_bench.ratios(h), http_bench.APP.items(), strict=True
        )
        if target is not None
    ]
    m = h["median"]
    post = http_bench.paired_ratio(h, "intern_post", "a")
    checks.append(("POST < 8.2x step a (Django's POST)", f"{post:.2f}x", post < 8.2))
    errors = {key: r["errors"] for key, r in m.items() if r["errors"]}
    text = ", ".join(f"{k} {v}" for k, v in errors.items()) or "0"
    return [*checks, ("no HTTP errors (all rounds)", text, not errors)]


def _floor(s: dict) -> str:
    """What the sweep costs on a copy with task's indexes and no triggers (its floor)."""
    r = s["ratios"]
    indexes, rest = r["indexed_vs_minimal"], r["sweep_vs_indexed"]
    cpu, cpu_indexes = r["server_cpu_sweep_vs_minimal"], r["server_cpu_indexed_vs_minimal"]
    return (
        f" (task's indexes alone: {indexes:.2f}x; the rest {rest:.2f}x; "
        f"PostgreSQL's CPU {cpu:.2f}x, indexes alone {cpu_indexes:.2f}x)"
    )


def _insert_floor(s: dict) -> str:
    """What the inserts cost on the copy with task's indexes and no triggers."""
    r = s["ratios"]
    indexes, rest = r["insert_indexed_vs_minimal"], r["insert_vs_indexed"]
    return f" (task's indexes alone: {indexes:.2f}x; the rest {rest:.2f}x)"


def sweep_targets(s: dict) -> list[tuple[str, str, bool]]:
    sweep, insert = s["ratios"]["sweep_vs_minimal"], s["ratios"]["insert_vs_minimal"]
    growth = [m["rss_growth_kib"] / 1024 for m in s["memory"]]
    dues = [m["due"] for m in s["memory"]]
    return [
        ("sweep <= 1.6x the minimal copy of task", f"{sweep:.2f}x{_floor(s)}", sweep <= 1.6),
        (
            "POST's INSERT <= 1.3x the minimal copy",
            f"{insert:.2f}x{_insert_floor(s)}",
            insert <= 1.3,
        ),
        (
            f"sweep peak memory flat ({min(dues)}..{max(dues)} due)",
            f"RSS growth {min(growth):.1f}..{max(growth):.1f} MiB",
            max(growth) - min(growth) < TARGETS["sweep_memory_flat_mib"],
        ),
    ]


ROUND_TRIPS = (("INTERN list", "", 3), ("INTERN detail", "", 2), ("INTERN 304", "", 2))
ROUND_TRIPS += (("INTERN POST", "<= ", 4),)
"""(request, how the target is written, at most this many round trips)"""


def round_trip_targets(statements: list[dict]) -> list[tuple[str, str, bool]]:
    by = {r["endpoint"]: r["round_trips"] for r in statements}
    return [
        (f"{name}: {le}{high} SQL round trips (all)", str(by[name]), by[name] <= high)
        for name, le, high in ROUND_TRIPS
    ]


def plan_targets(plans: dict) -> list[tuple[str, str, bool]]:
    admin = explain.admin_figures(plans)
    shape, ms = admin["slowest"]
    seq = admin["seq_scans"] + plans["intern_seq_scan_failures"]
    search = admin["search_page_ms"] or 0
    return [
        ("every ADMIN statement < 50 ms", f"slowest {ms:.1f} ms: {shape}", ms < 50),
        (
            "no seq scan of task or its search tables in any shape",
            "; ".join(seq) or "none",
            not seq,
        ),
        ("search (common word) page < 100 ms", f"{search:.1f} ms", search < 100),
    ]


def server_targets(results: dict) -> list[tuple[str, str, bool]]:
    """gunicorn stays the default while granian loses a behaviour (issue 19, step 5)."""
    lost = {k: server_behaviours.lost_behind_the_edge(results, k) for k in ("gunicorn", "granian")}
    text = "; ".join(f"{k} loses {', '.join(v) or 'nothing'}" for k, v in lost.items())
    target = "default server (gunicorn) keeps every behaviour the edge does not provide"
    return [(target, text, not lost["gunicorn"])]


def check_targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) of the stages that ran, in the order of the README's table."""

    def of(key: str, check) -> list:
        return check(results[key]) if key in results else []

    http = of("http", http_targets)
    return [
        *seed_targets(results),
        *http[:-1],
        *of("sweep", sweep_targets),
        *of("statements", round_trip_targets),
        *of("explain", plan_targets),
        *of("servers", server_targets),
        *http[-1:],
    ]


def finish(run: Run, started: float) -> None:
    """Targets, problems and the result files."""
    checks = check_targets(run.results)
    text = table(
        [[name, value, verdict(ok)] for name, value, ok in checks],
        ["target", "measured", ""],
    )
    run.results["targets"] = [{"target": n, "measured": v, "met": ok} for n, v, ok in checks]
    run.results["problems"] = run.problems
    run.results["elapsed_s"] = elapsed = time.perf_counter() - started
    heading = "targets (printed, not asserted"
    heading += "; a smoke run's figures mean nothing)" if run.args.smoke else ")"
    print(f"== {heading}", flush=True)
    print(text)
    run.md += ["## Targets", "", text, "", f"Whole run: {elapsed:.0f} s"]
    (RESULTS_DIR / f"{run.name}.json").write_text(json.dumps(run.results, indent=1, default=str))
    (RESULTS_DIR / f"{run.name}.md").write_text("\n".join(run.md) + "\n")
    for problem in run.problems:
        print(f"PROBLEM: {problem}", flush=True)
    print(f"\nwhole run {elapsed:.0f} s; results in bench/results/{run.name}.md and .json")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args, sizes_of(args))
    default = SMOKE_DATABASE if args.smoke else FULL_DATABASE
    use_database(args.database or os.environ.get(DATABASE_ENV) or default)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stages = stages_of(args)
    with exclusive_run(patience=run.sizes["lock_patience"]):
        started = time.perf_counter()
        run.results["started"] = datetime.now(UTC).isoformat(timespec="seconds")
        for title, stage in stages:
            print(f"== {title}", flush=True)
            stage_started = time.perf_counter()
            try:
                stage(run)
            except BaseException:
                print(f"\nSTAGE CRASHED: {title}", file=sys.stderr, flush=True)
                raise
            seconds = time.perf_counter() - stage_started
            run.results.setdefault("stage_s", {})[title] = seconds
            print(f"   ({title}: {seconds:.1f} s)", flush=True)
        finish(run, started)
    return 1 if run.problems else 0


if __name__ == "__main__":
    sys.exit(main())
