"""HTTP benchmark: gunicorn on loopback, driven by wrk, against the seeded database.

One fixed gunicorn configuration for both the app and the bare-Flask ceiling
(:data:`GUNICORN_ARGS`). Every wrk run is bounded by ``-d`` and stops by itself; every
gunicorn started here is stopped here (its own process group, started by us).

    python -m bench.http_bench [--duration 12] [--connections 8]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from bench.common import (
    BENCH_DIR,
    PASSWORD,
    RESULTS_DIR,
    ROOT,
    VENV_BIN,
    app_env,
    connect,
    db_name,
    table,
)

GUNICORN_ARGS = [
    "--workers",
    "2",
    "--worker-class",
    "gthread",
    "--threads",
    "4",
    "--keep-alive",
    "5",
    "--backlog",
    "256",
    "--log-level",
    "warning",
    "--worker-tmp-dir",
    "/dev/shm",
]
GUNICORN_DESCRIPTION = "2 workers x 4 threads (gthread), keep-alive 5 s"
LUA = BENCH_DIR / "wrk" / "common.lua"
LIST_PATH = "/api/tasks/?status=PENDING&ordering=due_date"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """A gunicorn master in its own process group, stopped on exit."""

    def __init__(self, app_spec: str, env: dict, label: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log = open(RESULTS_DIR / f"gunicorn-{label}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                *GUNICORN_ARGS,
                "--bind",
                f"127.0.0.1:{self.port}",
                app_spec,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.log = log

    def wait_ready(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited early, see {self.log.name}")
            try:
                with urllib.request.urlopen(self.base + path, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers (e.g. 401): ready
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def http(method: str, url: str, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def list_etag(url: str, token: str) -> str:
    """The ETag the app answers for ``url`` (for the 304 scenario)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        etag = response.headers.get("ETag")
    if not etag:
        raise RuntimeError(f"GET {url} answered no ETag")
    return etag


def login(base: str, username: str) -> str:
    status, body = http(
        "POST", base + "/api/auth/login/", {"username": username, "password": PASSWORD}
    )
    if status != 200:
        raise RuntimeError(f"login of {username} answered {status}: {body[:200]!r}")
    return json.loads(body)["access"]


def ensure_wrk() -> None:
    """wrk on the PATH: installed from Debian's archive (``apt-get install wrk``) when it is
    missing and this process is root; otherwise stop with a clear message."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit(
            "wrk is not installed, and only root may install it here: "
            "run `apt-get install wrk` as root (or as a user who can), then run again"
        )
    print("  wrk is missing: apt-get install wrk", flush=True)
    result = _apt_get("install", "wrk")
    if result.returncode != 0:  # a stale package list: update it once, then retry
        _apt_get("update")
        result = _apt_get("install", "wrk")
    if result.returncode != 0 or not shutil.which("wrk"):
        raise SystemExit(f"could not install wrk with apt-get:\n{result.stderr[-2000:]}")


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=120", "-y", "-qq", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def wrk(url: str, seconds: float, connections: int, **env: str) -> dict:
    """One bounded wrk run (1 thread, ``connections`` keep-alive connections)."""
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        url,
    ]
    run_env = {**os.environ, "BENCH_TOKEN": "", "BENCH_BODY": "", "BENCH_IDS_FILE": "", **env}
    out = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = json.loads(line.removeprefix("BENCH_RESULT "))
            break
    else:
        raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")
    errors = sum(
        raw[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "requests": raw["requests"],
        "errors": errors,
        "timeouts": raw["timeouts"],
        "raw": raw,
    }


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of the machine's CPU busy over ``seconds`` (from /proc/stat)."""

    def sample():
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_snapshot(server: "Gunicorn") -> dict[str, dict[int, float]]:
    """CPU seconds so far of the server's processes (master and workers) and of the
    PostgreSQL backends connected to the bench database (the monitoring one excluded)."""
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.proc.pid)], capture_output=True, text=True
    )
    python = [server.proc.pid, *(int(p) for p in out.stdout.split())]
    with connect(autocommit=True) as conn:
        backends = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'",
                [db_name()],
            )
        ]
    return {
        "python": {pid: _proc_cpu(pid) for pid in python},
        "postgres": {pid: _proc_cpu(pid) for pid in backends},
    }


def cpu_per_request(before: dict, after: dict, requests: int) -> dict[str, float]:
    """CPU milliseconds per request spent in the server's Python processes and in
    PostgreSQL (parallel workers, which come and go, are not counted)."""
    out = {}
    for kind in ("python", "postgres"):
        spent = sum(cpu - before[kind].get(pid, 0.0) for pid, cpu in after[kind].items())
        out[f"{kind}_cpu_ms_per_request"] = spent * 1000 / max(1, requests)
    return out


def cpu_probe() -> float:
    """Milliseconds a fixed pure-Python loop takes on one core right now (best of 3). On
    this VM the host's load changes how fast a core runs, by 2-3x from one minute to the
    next while /proc/stat shows the guest idle; the probe is recorded with each scenario."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i % 7
        best = min(best, time.perf_counter() - start)
    return best * 1000


def wait_quiet(limit: float = 0.25, patience: float = 30) -> float:
    """Wait (at most ``patience`` s) until other work on the machine uses under ``limit``
    of its CPU; returns the last measured share. Figures taken while the box is busy with
    something else are not this app's."""
    deadline = time.monotonic() + patience
    busy = cpu_busy(1.0)
    while busy > limit and time.monotonic() < deadline:
        busy = cpu_busy(1.0)
    return busy


def scenario(
    name: str,
    url: str,
    *,
    seconds: float,
    connections: int,
    warmup: float,
    server: "Gunicorn | None" = None,
    patience: float = 30,
    **env,
) -> dict:
    """Warm up, then one measured wrk run. ``background_cpu`` is how busy the machine was
    just before, with this scenario idle (after waiting at most ``patience`` s for it to be
    idle): other work on the box skews the figures."""
    background = wait_quiet(patience=patience) if patience else cpu_busy(0.2)
    probe = cpu_probe()
    if warmup:
        wrk(url, warmup, connections, **env)
    before = cpu_snapshot(server) if server else None
    result = wrk(url, seconds, connections, **env)
    if server:
        result.update(cpu_per_request(before, cpu_snapshot(server), result["requests"]))
    result.update(
        name=name,
        connections=connections,
        seconds=seconds,
        background_cpu=background,
        cpu_probe_ms=probe,
    )
    print(
        f"  {name:<38} {result['rps']:7.1f} req/s  p50 {result['p50_ms']:6.1f} ms  "
        f"p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}  "
        f"(machine busy before: {background:.0%}, CPU probe {probe:.0f} ms)",
        flush=True,
    )
    return result


def bench_users() -> dict:
    """The ADMIN, and the INTERN with the most tasks (the heaviest intern list)."""
    with connect() as conn:
        admin = conn.execute(
            "SELECT id, username FROM user_account WHERE role = 'ADMIN' ORDER BY id LIMIT 1"
        ).fetchone()
        intern = conn.execute(
            "SELECT u.id, u.username, count(*) FROM user_account u JOIN task t "
            "ON t.assigned_to_id = u.id WHERE u.role = 'INTERN' GROUP BY u.id "
            "ORDER BY count(*) DESC, u.id LIMIT 1"
        ).fetchone()
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM task WHERE assigned_to_id = %s ORDER BY id", [intern[0]]
            )
        ]
        max_id = conn.execute("SELECT max(id) FROM task").fetchone()[0]
    return {
        "admin": admin[1],
        "intern": intern[1],
        "intern_id": intern[0],
        "intern_tasks": intern[2],
        "intern_task_ids": ids,
        "max_task_id": max_id,
    }


def cleanup_writes(max_task_id: int) -> None:
    """Undo the POST scenario: its tasks (raw DELETE, no ORM, so no log entries) and the
    log entries (the seed has none; TRUNCATE is the only way past the append-only trigger).
    wrk stops with requests in flight: the tables are locked first (waiting for those
    transactions) so that the cleanup cannot deadlock with them."""
    time.sleep(0.5)
    for attempt in range(5):
        try:
            with connect() as conn:
                conn.execute("SET lock_timeout = '20s'")
                conn.execute(
                    "LOCK TABLE task, activity_log, revoked_token, webhook_outbox "
                    "IN ACCESS EXCLUSIVE MODE"
                )
                conn.execute("DELETE FROM task WHERE id > %s", [max_task_id])
                # The log refuses TRUNCATE (migration 0003); the owner lifts that for
                # this transaction only, as the test suite does between tests.
                conn.execute("ALTER TABLE activity_log DISABLE TRIGGER activity_log_no_truncate")
                conn.execute("TRUNCATE activity_log, revoked_token, webhook_outbox")
                conn.execute("ALTER TABLE activity_log ENABLE TRIGGER activity_log_no_truncate")
                conn.commit()
            break
        except psycopg.errors.DeadlockDetected:
            if attempt == 4:
                raise
            time.sleep(1)
    with connect(autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) task")


SCENARIOS = (
    "bare_ceiling",
    "intern_list",
    "admin_list",
    "admin_list_c1",
    "intern_detail",
    "intern_list_304",
    "intern_post",
)
POST_BODY = {
    "title": "bench task",
    "description": "made by wrk",
    "priority": "HIGH",
    "due_date": "2031-01-31",
}


def _get_ok(method: str, url: str, expected: int, body=None, token=None) -> bytes:
    status, answer = http(method, url, body, token=token)
    if status != expected:
        raise RuntimeError(f"{method} {url} answered {status}: {answer[:300]!r}")
    return answer


def check_app(base: str, users: dict, page_file: Path) -> tuple[dict, dict]:
    """Log in both users, check the list and the POST answer as they should, keep the
    INTERN's page for the bare app; (tokens, page figures)."""
    tokens = {"admin": login(base, users["admin"]), "intern": login(base, users["intern"])}
    page = _get_ok("GET", base + LIST_PATH, 200, token=tokens["intern"])
    page_file.write_bytes(page)
    admin_page = _get_ok("GET", base + LIST_PATH, 200, token=tokens["admin"])
    _get_ok("POST", base + "/api/tasks/", 201, POST_BODY, token=tokens["intern"])
    cleanup_writes(users["max_task_id"])
    envelope = json.loads(page)
    figures = {
        "intern_count": envelope["count"],
        "admin_count": json.loads(admin_page)["count"],
        "bytes": len(page),
        "results": len(envelope["results"]),
    }
    return tokens, figures


def scenario_plan(
    app_base: str, bare_base: str, tokens: dict, ids_file: Path, connections: int
) -> dict[str, tuple]:
    """Per scenario: (name, URL, connections, wrk environment, which server)."""
    url, tasks_url = app_base + LIST_PATH, app_base + "/api/tasks/"
    intern, admin = {"BENCH_TOKEN": tokens["intern"]}, {"BENCH_TOKEN": tokens["admin"]}
    return {
        "bare_ceiling": (
            "bare Flask, pre-built page (ceiling)",
            bare_base + "/api/tasks/",
            connections,
            {},
            "bare",
        ),
        "intern_list": ("INTERN GET list (PENDING, due_date)", url, connections, intern, "app"),
        "admin_list": ("ADMIN GET list (PENDING, due_date)", url, connections, admin, "app"),
        "admin_list_c1": ("ADMIN GET list, 1 connection", url, 1, admin, "app"),
        "intern_detail": (
            "INTERN GET /api/tasks/{id}/",
            tasks_url,
            connections,
            {**intern, "BENCH_IDS_FILE": str(ids_file)},
            "app",
        ),
        "intern_list_304": (
            "INTERN GET list, If-None-Match (304)",
            url,
            connections,
            {**intern, "BENCH_IF_NONE_MATCH": "fetched in each round"},
            "app",
        ),
        "intern_post": (
            "INTERN POST /api/tasks/ (+ audit row)",
            tasks_url,
            connections,
            {**intern, "BENCH_BODY": json.dumps(POST_BODY)},
            "app",
        ),
    }


def post_writes(max_task_id: int) -> dict:
    """What the POST scenario wrote: its tasks and their CREATED log rows."""
    with connect() as conn:
        made = conn.execute("SELECT count(*) FROM task WHERE id > %s", [max_task_id]).fetchone()
        logged = conn.execute(
            "SELECT count(*) FROM activity_log WHERE action = 'CREATED'"
        ).fetchone()
    return {"tasks_created": made[0], "log_rows_created": logged[0]}


def run_round(plan: dict, servers: dict, timing: dict, max_task_id: int) -> dict:
    """Every scenario once, in SCENARIOS order; the POST scenario's rows removed after."""
    this_round = {}
    for key in SCENARIOS:
        name, target, conns, env, host = plan[key]
        if "BENCH_IF_NONE_MATCH" in env:  # current now: the last round's POSTs changed it
            env = {**env, "BENCH_IF_NONE_MATCH": list_etag(target, env["BENCH_TOKEN"])}
        this_round[key] = scenario(
            name, target, connections=conns, server=servers[host], **timing, **env
        )
    this_round["intern_post"].update(post_writes(max_task_id))
    cleanup_writes(max_task_id)
    return this_round


def best_of_rounds(results: dict) -> None:
    """Each scenario's figures from its round with the higher throughput (load from
    elsewhere on the machine can only slow a round down), and its share of the ceiling."""
    for key in SCENARIOS:
        results[key] = max((r[key] for r in results["rounds"]), key=lambda r: r["rps"])
    ceiling = results["bare_ceiling"]["rps"]
    for key in SCENARIOS[1:]:
        results[key]["ratio_to_ceiling"] = results[key]["rps"] / ceiling if ceiling else 0.0


def run(
    seconds: float = 12,
    connections: int = 8,
    warmup: float = 3,
    rounds: int = 2,
    patience: float = 30,
) -> dict:
    """Both servers up side by side (the idle one costs nothing); ``rounds`` rounds of every
    scenario, interleaved, the POST scenario last in each round and its rows removed after
    it. All rounds are kept in ``rounds``. ``patience``: how long each scenario may wait
    for the machine to be idle first (0: not at all)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    users = bench_users()
    ids_file = RESULTS_DIR / "intern_task_ids.txt"
    ids_file.write_text("\n".join(map(str, users["intern_task_ids"])) + "\n")
    page_file = RESULTS_DIR / "bare_page.json"
    timing = {"seconds": seconds, "warmup": warmup, "patience": patience}
    print(
        f"HTTP: gunicorn {GUNICORN_DESCRIPTION}; wrk 1 thread, {connections} connections, "
        f"{seconds:g} s per scenario after {warmup:g} s warm-up; {rounds} rounds",
        flush=True,
    )
    results: dict = {"rounds": []}
    try:
        with Gunicorn("wsgi:app", app_env(), "app") as server:
            server.wait_ready("/healthz")
            tokens, results["page"] = check_app(server.base, users, page_file)
            bare_env = {**os.environ, "BENCH_BARE_PAGE": str(page_file)}
            with Gunicorn("bench.bare_app:app", bare_env, "bare") as bare:
                bare.wait_ready("/api/tasks/")
                plan = scenario_plan(server.base, bare.base, tokens, ids_file, connections)
                for number in range(1, rounds + 1):
                    print(f" round {number}", flush=True)
                    servers = {"app": server, "bare": bare}
                    results["rounds"].append(run_round(plan, servers, timing, users["max_task_id"]))
    finally:
        cleanup_writes(users["max_task_id"])
    best_of_rounds(results)
    results["config"] = {
        "gunicorn": GUNICORN_DESCRIPTION,
        "connections": connections,
        "seconds": seconds,
        "warmup": warmup,
        "rounds": rounds,
        "intern": users["intern"],
        "intern_tasks": users["intern_tasks"],
        "admin": users["admin"],
    }
    return results


def report(results: dict) -> str:
    rows = []
    for key in SCENARIOS:
        r = results[key]
        ratio = r.get("ratio_to_ceiling", 1.0)
        others = [f"{x[key]['rps']:.0f}" for x in results["rounds"]]
        probes = [f"{x[key].get('cpu_probe_ms', 0):.0f}" for x in results["rounds"]]
        rows.append(
            [
                r["name"],
                r["connections"],
                f"{r['rps']:.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                r["errors"],
                f"{ratio:.1%}",
                " / ".join(others),
                f"{r['background_cpu']:.0%}",
                " / ".join(probes),
                f"{r.get('python_cpu_ms_per_request', 0):.2f}",
                f"{r.get('postgres_cpu_ms_per_request', 0):.2f}",
            ]
        )
    headers = [
        "scenario",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "of ceiling",
        "req/s by round",
        "busy before",
        "CPU probe ms by round",
        "gunicorn CPU ms/req",
        "PostgreSQL CPU ms/req",
    ]
    return table(rows, headers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=12)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ensure_wrk()
    results = run(args.duration, args.connections, args.warmup, args.rounds)
    print(report(results))
    Path(RESULTS_DIR / "http.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
