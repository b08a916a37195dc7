"""Run the fault scenarios: ``.venv/bin/python -m reliability.faults [--only NAME,...]``.

Each scenario starts its own throwaway PostgreSQL cluster, Redis, gunicorn and (for the
worker scenario) Celery workers on loopback ports of its own, breaks one of them on
purpose, prints PASS/FAIL per check with the figures, and tears everything down. The
shared servers (PostgreSQL 5432, Redis 6379) are never touched. Exit status 1 if any
check failed (or a scenario crashed), 0 otherwise.
"""

import argparse
import signal
import sys
import time
import traceback

from reliability.faults import postgres_restart, redis_down, redis_frozen, worker_kill
from reliability.faults.checks import Report
from reliability.infra import hard_deadline, install_signal_handlers

SCENARIOS = {
    "redis": redis_down,
    "postgres": postgres_restart,
    "worker": worker_kill,
    "frozen": redis_frozen,  # opt-in: not part of the default run
}
DEFAULT = ("redis", "postgres", "worker")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reliability.faults", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT),
        help="comma-separated scenarios: redis, postgres, worker, frozen "
        "(default: redis,postgres,worker; frozen is opt-in)",
    )
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--http-port", type=int, default=8811)
    parser.add_argument(
        "--tasks",
        type=int,
        default=200_000,
        help="overdue tasks seeded for the worker-kill sweep (default 200000)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, data)")
    parser.add_argument(
        "--time-limit",
        type=int,
        default=1200,
        help="hard limit for the whole run in seconds (default 1200)",
    )
    args = parser.parse_args(argv)
    args.chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def run_scenario(name: str, args: argparse.Namespace, report: Report) -> bool:
    """One scenario; False if it crashed (the crash is also a failed check)."""
    module = SCENARIOS[name]
    print(f"\n=== {module.NAME} ===", flush=True)
    started = time.monotonic()
    kwargs = dict(
        pg_port=args.pg_port, redis_port=args.redis_port, http_port=args.http_port, keep=args.keep
    )
    if name == "worker":
        kwargs["tasks"] = args.tasks
    try:
        module.run(report, **kwargs)
        ok = True
    except Exception:
        traceback.print_exc()
        report.check(module.NAME, "scenario ran to the end", False, "crashed (trace above)")
        ok = False
    print(f"      [{module.NAME}] {time.monotonic() - started:.0f} s", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    hard_deadline(args.time_limit)
    report = Report()
    started = time.monotonic()
    crashed = [name for name in args.chosen if not run_scenario(name, args, report)]
    signal.alarm(0)
    failed = report.failed
    print(
        f"\n{len(report.checks) - len(failed)} passed, {len(failed)} failed "
        f"({time.monotonic() - started:.0f} s)"
    )
    for check in failed:
        print(f"FAILED [{check.scenario}] {check.name}: {check.figures}")
    return 1 if failed or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
