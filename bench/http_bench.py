"""HTTP benchmark: taskapp and the ladder of minimal apps under wrk; bench/README.md, "HTTP"."""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg

from bench import common
from bench.common import (
    PASSWORD,
    RESULTS_DIR,
    ROOT,
    VENV_BIN,
    app_env,
    connect,
    empty_broker,
    table,
    verdict,
)

SERVERS = {
    "gunicorn": "gunicorn 2 workers x 4 threads (gthread), keep-alive 5 s",
    "granian": "granian WSGI 2 workers x 4 blocking threads",
}
LUA = ROOT / "bench" / "wrk" / "common.lua"
LIST_PATH = "/api/tasks/?status=PENDING&ordering=due_date"
POST_BODY = {"title": "bench task", "description": "made by wrk", "priority": "HIGH"}
POST_BODY["due_date"] = "2031-01-31"
LADDER = {  # step -> (label, request kind)
    "a": ("a. bare Flask, the page pre-built", "list"),
    "b": ("b. a + @jwt_required()", "list"),
    "c": ("c. b + Core SELECT of the user row", "list"),
    "d": ("d. c + SELECT of 20 tasks, orjson dump", "list"),
    "e": ("e. d + count", "list"),
    "f": ("f. e + webargs TaskQueryArgsSchema", "list"),
    "g": ("g. f through a smorest MethodView", "list"),
    "g_plumbed": ("g inside taskapp's plumbing", "list"),
    "h": ("h. 304: c + smorest args + stamp", "304"),
    "h_plumbed": ("h inside taskapp's plumbing", "304"),
    "detail": ("detail: c + one row + dump", "detail"),
    "detail_plumbed": ("detail inside taskapp's plumbing", "detail"),
    "post": ("POST: c + INSERT task + audit + COMMIT", "post"),
    "post_plumbed": ("POST inside taskapp's plumbing", "post"),
}
APP = {  # scenario -> (label, request kind, its ladder step, the ratio target)
    "intern_list": ("taskapp INTERN list", "list", "g", 1.2),
    "admin_list": ("taskapp ADMIN list", "admin_list", "g", None),
    "intern_list_304": ("taskapp INTERN list 304", "304", "h", 1.2),
    "intern_detail": ("taskapp detail", "detail", "detail", 1.2),
    "intern_post": ("taskapp POST (+ audit row)", "post", "post", 1.25),
}
FLOORS = {key: f"{step}_plumbed" for key, (_, _, step, target) in APP.items() if target}
"""Scenario -> its step with taskapp's per-request plumbing around it (ladder_app.plumbed_app):
how far the scenario is from the stack plus what taskapp puts around every request. In a
round the bare step, its scenarios (the INTERN list: then the ADMIN list) and the plumbed
step follow one another."""
ORDER = [k for step in LADDER for k in (step, *(s for s, v in APP.items() if v[2] == step))]
"""One round: each taskapp scenario right after its ladder step."""


def server_argv(kind: str, app_spec: str, port: int) -> list[str]:
    if kind == "granian":
        return [
            *(str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", "2"),
            *("--blocking-threads", "4", "--backlog", "256", "--log-level", "warning"),
            *("--host", "127.0.0.1", "--port", str(port), "--no-ws", app_spec),
        ]
    return [
        *(str(VENV_BIN / "gunicorn"), "--workers", "2", "--worker-class", "gthread"),
        *("--threads", "4", "--keep-alive", "5", "--backlog", "256", "--log-level"),
        *("warning", "--worker-tmp-dir", "/dev/shm", "--bind", f"127.0.0.1:{port}"),
        *("--config", "/dev/null", app_spec),  # not ./gunicorn.conf.py (its access log)
    ]


class Server:
    """A server (gunicorn or granian) in its own process group, stopped on exit."""

    def __init__(self, kind: str, app_spec: str, env: dict, label: str, cwd: Path = ROOT):
        self.port = common.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = RESULTS_DIR / f"{kind}-{label}.log"
        self.proc = common.start(server_argv(kind, app_spec, self.port), env, self.log, cwd)

    def wait_ready(self, path: str) -> None:
        common.wait_answering(self.base + path, self.proc)

    def pids(self) -> list[int]:
        """The master and every process below it (granian: workers under the master)."""
        return common.group_pids(self.proc.pid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        common.stop(self.proc)


def expect(status: int, method: str, url: str, token: str = "", **kwargs) -> httpx.Response:
    """A request to a server under benchmark, which must answer ``status``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.request(method, url, headers=headers, timeout=30, **kwargs)
    if answer.status_code != status:
        raise RuntimeError(f"{method} {url} answered {answer.status_code}: {answer.text[:300]}")
    return answer


def login(base: str, username: str) -> str:
    credentials = {"username": username, "password": PASSWORD}
    return expect(200, "POST", base + "/api/auth/login/", json=credentials).json()["access"]


def ensure_wrk() -> None:
    """wrk on the PATH: ``apt-get install wrk`` when missing and root; otherwise stop."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed: run `apt-get install wrk` as root, then again")
    print("  wrk is missing: apt-get install wrk", flush=True)
    for args in (("install", "wrk"), ("update",), ("install", "wrk")):
        result = subprocess.run(
            ["apt-get", "-o", "DPkg::Lock::Timeout=120", "-y", "-qq", *args],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if shutil.which("wrk"):
            return
    raise SystemExit(f"could not install wrk with apt-get:\n{result.stderr[-2000:]}")


def wrk(url: str, seconds: float, connections: int, **env: str) -> dict:
    """One bounded wrk run (1 thread, ``connections`` keep-alive connections)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "5s"]
    cmd += ["-s", str(LUA), url]
    blank = dict.fromkeys(("BENCH_TOKEN", "BENCH_BODY", "BENCH_IDS_FILE", "BENCH_STEP"), "")
    out = subprocess.run(
        cmd,
        env={**os.environ, **blank, **env},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    lines = [x for x in out.stdout.splitlines() if x.startswith("BENCH_RESULT ")]
    if not lines:
        raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")
    raw = json.loads(lines[0].removeprefix("BENCH_RESULT "))
    kinds = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": sum(raw[k] for k in kinds),
        "timeouts": raw["timeouts"],
        "raw": raw,
    }


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of the machine's CPU busy over ``seconds`` (from /proc/stat)."""

    def sample():
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(limit: float = 0.25, patience: float = 30) -> float:
    """Wait (at most ``patience`` s) until other work uses under ``limit`` of the CPU."""
    deadline = time.monotonic() + patience
    busy = cpu_busy(1.0 if patience else 0.2)
    while busy > limit and time.monotonic() < deadline:
        busy = cpu_busy(1.0)
    return busy


def cpu_snapshot(server: Server) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the server's processes and of the bench database's backends."""
    with connect(autocommit=True) as conn:
        backends = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'",
            [common.db_name()],
        ).fetchall()
    return {
        "python": {pid: common.proc_cpu(pid) for pid in server.pids()},
        "postgres": {row[0]: common.proc_cpu(row[0]) for row in backends},
    }


LOPSIDED = 0.8
"""A measured run in which one server process spent more than this share of the server's
CPU is run again: the kernel handed one worker all of wrk's connections, so the figure is
one worker serving 8 connections on its 4 threads (about 1.8x the CPU a request, step a
0.43 ms against 0.24), not the two-worker server (bench/README.md, "How it measures")."""
RETRIES = 3


def measure(url: str, server: Server, timing: dict, connections: int, env: dict) -> dict:
    """Warm up, then one measured wrk run, with the CPU the server and PostgreSQL spent; a
    run that only one worker served is run again (at most RETRIES times; then the most
    even of the runs is kept)."""
    background = wait_quiet(patience=timing["patience"])
    if timing["warmup"]:
        wrk(url, timing["warmup"], connections, **env)
    lopsided = 0
    result = _measured_run(url, server, timing["seconds"], connections, env)
    while result["busiest_process_share"] > LOPSIDED and lopsided < RETRIES:
        lopsided += 1
        again = _measured_run(url, server, timing["seconds"], connections, env)
        result = min(result, again, key=lambda run: run["busiest_process_share"])
    result["lopsided_runs"] = lopsided
    result["background_cpu"] = background
    return result


def _measured_run(url: str, server: Server, seconds: float, connections: int, env: dict) -> dict:
    before = cpu_snapshot(server)
    result = wrk(url, seconds, connections, **env)
    after = cpu_snapshot(server)
    for kind in ("python", "postgres"):
        spent = sum(cpu - before[kind].get(pid, 0.0) for pid, cpu in after[kind].items())
        result[f"{kind}_cpu_ms"] = spent * 1000 / max(1, result["requests"])
    by_process = [cpu - before["python"].get(pid, 0.0) for pid, cpu in after["python"].items()]
    result["busiest_process_share"] = max(by_process) / max(1e-9, sum(by_process))
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
        ids = conn.execute(
            "SELECT id FROM task WHERE assigned_to_id = %s ORDER BY id", [intern[0]]
        ).fetchall()
        max_id = conn.execute("SELECT max(id) FROM task").fetchone()[0]
    return {
        "admin": admin[1],
        "intern": intern[1],
        "intern_id": intern[0],
        "intern_tasks": intern[2],
        "intern_task_ids": [row[0] for row in ids],
        "intern_task_id": ids[len(ids) // 2][0],  # the in-process detail's
        "max_task_id": max_id,
    }


def cleanup_writes(max_task_id: int) -> None:
    """Undo the POST scenarios: their tasks, and the log (the seed has none) by TRUNCATE past
    its append-only trigger; the tables locked first (wrk stops with requests in flight);
    and the webhook nudges they published."""
    time.sleep(0.5)
    empty_broker()
    for attempt in range(5):
        try:
            with connect() as conn:
                conn.execute("SET lock_timeout = '20s'")
                tables = "task, activity_log, revoked_token, webhook_outbox, personal_access_token"
                conn.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
                conn.execute("DELETE FROM task WHERE id > %s", [max_task_id])
                conn.execute("ALTER TABLE activity_log DISABLE TRIGGER activity_log_no_truncate")
                conn.execute("TRUNCATE activity_log, revoked_token, webhook_outbox, token_event")
                conn.execute("DELETE FROM personal_access_token")
                conn.execute("ALTER TABLE activity_log ENABLE TRIGGER activity_log_no_truncate")
                conn.commit()
            break
        except psycopg.errors.DeadlockDetected:
            if attempt == 4:
                raise
            time.sleep(1)
    with connect(autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) task")


def prepare(base: str, users: dict) -> dict:
    """Tokens, the INTERN's page (the ladder's body) and detail ids; wrk's environments."""
    tokens = {role: login(base, users[role]) for role in ("admin", "intern")}
    page = expect(200, "GET", base + LIST_PATH, tokens["intern"]).content
    (RESULTS_DIR / "bare_page.json").write_bytes(page)
    ids_file = RESULTS_DIR / "intern_task_ids.txt"
    ids_file.write_text("\n".join(map(str, users["intern_task_ids"])) + "\n")
    expect(201, "POST", base + "/api/tasks/", tokens["intern"], json=POST_BODY)
    cleanup_writes(users["max_task_id"])
    intern = {"BENCH_TOKEN": tokens["intern"]}
    envelope = json.loads(page)
    return {
        "tokens": tokens,
        "page": {"intern_count": envelope["count"], "bytes": len(page)},
        "kinds": {
            "list": (LIST_PATH, intern),
            "admin_list": (LIST_PATH, {"BENCH_TOKEN": tokens["admin"]}),
            "304": (LIST_PATH, intern),
            "detail": ("/api/tasks/", {**intern, "BENCH_IDS_FILE": str(ids_file)}),
            "post": ("/api/tasks/", {**intern, "BENCH_BODY": json.dumps(POST_BODY)}),
        },
    }


def list_etag(base: str, token: str) -> str:
    """The ETag taskapp answers now for the INTERN list (for the 304 scenarios)."""
    return expect(200, "GET", base + LIST_PATH, token).headers["ETag"]


def describe(key: str) -> tuple[str, str, str]:
    """(label, request kind, server) of a scenario; ``before_*``: taskapp's baseline."""
    if key in LADDER:
        return *LADDER[key], "ladder"
    label, kind = APP[key.removeprefix("before_")][:2]
    if key.startswith("before_"):
        return f"{label} (before)", kind, "before"
    return label, kind, "app"


def run_round(plan: dict, servers: dict, timing: dict, connections: int) -> dict:
    """Every scenario once; the 304s send the ETag their server answers now."""
    token = plan["tokens"]["intern"]
    etags = {
        name: list_etag(servers[name].base, token) for name in ("app", "before") if name in servers
    }
    out = {}
    for key in plan["keys"]:
        label, kind, name = describe(key)
        path, env = plan["kinds"][kind]
        env = {**env, "BENCH_STEP": key if name == "ladder" else ""}
        if kind == "304":
            env["BENCH_IF_NONE_MATCH"] = etags.get(name, etags["app"])
        server = servers[name]
        out[key] = r = measure(server.base + path, server, timing, connections, env)
        print(
            f"  {label:<42} {r['python_cpu_ms']:5.2f} ms CPU/req  {r['rps']:7.1f} req/s  "
            f"p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}  (busy {r['background_cpu']:.0%})"
            + (
                f"  ({r['lopsided_runs']} lopsided run(s) again, then the busiest process "
                f"{r['busiest_process_share']:.0%})"
                if r["lopsided_runs"]
                else ""
            ),
            flush=True,
        )
    return out


def medians(rounds: list[dict]) -> dict:
    """Per scenario, the median over the rounds of each figure."""
    figures = ("python_cpu_ms", "postgres_cpu_ms", "rps", "p50_ms", "p99_ms")
    return {
        key: {f: statistics.median(r[key][f] for r in rounds) for f in figures}
        | {"errors": sum(r[key]["errors"] for r in rounds)}
        for key in rounds[0]
    }


def run(timing: dict, connections: int, kind: str, before: Path | None = None) -> dict:
    """``timing``'s rounds (seconds, warmup, rounds, patience) of taskapp, the ladder and
    ``before`` (a checkout to compare with) side by side; bench/README.md, "HTTP"."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # servers stopped on exit
    users = bench_users()
    print(f"HTTP: {SERVERS[kind]}; wrk {connections} connections, {timing['seconds']:g} s")
    results: dict = {"rounds": [], "server": kind}
    keys = [
        k for key in ORDER for k in (key, f"before_{key}") if k == key or (before and key in APP)
    ]
    checkouts = {"app": ROOT, **({"before": before} if before else {})}
    with ExitStack() as stack:
        stack.callback(cleanup_writes, users["max_task_id"])
        servers = {
            name: stack.enter_context(Server(kind, "wsgi:app", app_env(), name, cwd))
            for name, cwd in checkouts.items()
        }
        for server in servers.values():
            server.wait_ready("/healthz")
        plan = {**prepare(servers["app"].base, users), "keys": keys}
        ladder_env = app_env(BENCH_BARE_PAGE=str(RESULTS_DIR / "bare_page.json"))
        servers["ladder"] = stack.enter_context(
            Server(kind, "bench.ladder_app:app", ladder_env, "ladder")
        )
        servers["ladder"].wait_ready("/api/tasks/")
        for number in range(1, timing["rounds"] + 1):
            print(f" round {number}", flush=True)
            results["rounds"].append(run_round(plan, servers, timing, connections))
            cleanup_writes(users["max_task_id"])
    results["median"] = medians(results["rounds"])
    results["page"] = plan["page"]
    config = {"server": SERVERS[kind], "connections": connections, **timing}
    results["config"] = config | {"intern": users["intern"], "tasks": users["intern_tasks"]}
    return results


def report(results: dict) -> str:
    """Every scenario's medians, then each taskapp figure as a multiple of its step."""
    m, rows = results["median"], []
    for key, r in m.items():
        by_round = " / ".join(f"{x[key]['python_cpu_ms']:.2f}" for x in results["rounds"])
        rows.append([describe(key)[0], f"{r['python_cpu_ms']:.2f}", by_round])
        rows[-1] += [f"{r['postgres_cpu_ms']:.2f}", f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}"]
        rows[-1] += [f"{r['p99_ms']:.1f}", r["errors"]]
    headers = ["scenario", "worker CPU ms/req", "by round", "PostgreSQL CPU ms/req"]
    headers += ["req/s", "p50 ms", "p99 ms", "errors"]
    plumbed = floor_ratios(results)
    floors = [[APP[k][0], LADDER[step][0], f"{plumbed[k]:.2f}x"] for k, step in FLOORS.items()]
    text = table(rows, headers) + "\n\n" + table(ratios(results), RATIO_HEADERS)
    return text + "\n\n" + table(floors, ["taskapp", "over", "ratio (paired)"])


RATIO_HEADERS = ["taskapp", "worker CPU ms", "ladder step", "step ms", "ratio (paired)", "target"]
RATIO_HEADERS += ["before: ms", "before: ratio"]


def paired_ratio(results: dict, key: str, step: str) -> float:
    """The median over the rounds of ``key``'s worker CPU over ``step``'s in the same round.
    A scenario runs right after its step, so the pair shares the machine's speed of the
    moment (on this host a step moves by up to 40% between minutes, code unchanged); POST
    over step a, minutes apart, is at least taken from the same round."""
    return statistics.median(
        r[key]["python_cpu_ms"] / (r[step]["python_cpu_ms"] or 1e-9) for r in results["rounds"]
    )


def floor_ratios(results: dict) -> dict[str, float]:
    """Each FLOORS scenario over its plumbed step (paired by round)."""
    return {key: paired_ratio(results, key, step) for key, step in FLOORS.items()}


def ratios(results: dict) -> list[list]:
    """Each taskapp figure as a multiple of its ladder step's (and the ``before`` code's)."""
    m, rows = results["median"], []
    for key, (label, _, step, target) in APP.items():
        cpu, step_ms = m[key]["python_cpu_ms"], m[step]["python_cpu_ms"]
        ratio = paired_ratio(results, key, step)
        met = f"<= {target}x: {verdict(ratio <= target)}" if target else ""
        rows.append([label, f"{cpu:.2f}", LADDER[step][0], f"{step_ms:.2f}", f"{ratio:.2f}x", met])
        before = m.get(f"before_{key}", {}).get("python_cpu_ms")
        if before:
            rows[-1] += [f"{before:.2f}", f"{paired_ratio(results, f'before_{key}', step):.2f}x"]
        else:
            rows[-1] += ["", ""]
    return rows
