"""Settings and helpers shared by the benchmarks (the bench database: bench/README.md)."""

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import zlib
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
DATABASE_ENV = "BENCH_DATABASE"
FULL_DATABASE = "taskapp_bench"
SMOKE_DATABASE = "taskapp_bench_smoke"

ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
FAST_HASHING = {"PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 8}
FAST_HASHING["PASSWORD_HASH_PARALLELISM"] = 1
"""Cheap argon2 settings for the benches that create their users on each run."""

PASSWORD = "bench-password-not-secret"
JWT_SECRET = "bench-only-jwt-secret-0123456789-abcdefghijklmnop"

assert PG_HOST in {"127.0.0.1", "localhost", "::1"}, "the benchmark only uses loopback"


def db_name() -> str:
    """The bench database in use (``BENCH_DATABASE``): only ``taskapp_bench*`` names pass."""
    name = os.environ.get(DATABASE_ENV, FULL_DATABASE)
    if not name.startswith(FULL_DATABASE) or not name.replace("_", "").isalnum():
        raise SystemExit(f"{DATABASE_ENV}={name!r}: the benchmark only uses taskapp_bench*")
    return name


def use_database(name: str) -> None:
    """Make ``name`` the bench database of this process and of every process it starts."""
    os.environ[DATABASE_ENV] = name
    db_name()


def dsn(driver: str = "postgresql") -> str:
    """The bench database's URL: libpq's, or SQLAlchemy's with ``postgresql+psycopg``."""
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{db_name()}"


BENCH_WEBHOOK_KEY = "YmVuY2gtd2ViaG9vay1rZXktMzItYnl0ZXMtbG9uZyE="
"""A production-shaped key (urlsafe base64 of 32 bytes) for benchmark runs only."""
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
"""The Celery broker of the app under benchmark: Redis, as in production, so a POST's
webhook nudge is published as it is there (no worker consumes it; :func:`empty_broker`
drops what piled up). Rate limits stay in memory: ``REDIS_URL`` is left unset."""


def app_env(**extra: str) -> dict[str, str]:
    """Environment for the app under benchmark (gunicorn, flask CLI, in-process)."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DATABASE_URL=dsn("postgresql+psycopg"),
        JWT_SECRET_KEY=JWT_SECRET,
        TASKAPP_ENV="production",
        WEBHOOK_SECRET_KEY=BENCH_WEBHOOK_KEY,
        TRUSTED_HOSTS="127.0.0.1,localhost",
        CELERY_BROKER_URL=BROKER_URL,
        # One run lasts a few minutes; the default 15-minute lifetime would be enough,
        # but a long one keeps a slow machine from ending a scenario with 401s.
        JWT_ACCESS_TOKEN_LIFETIME_SECONDS="7200",
        TASKAPP_INSTANCE_DIR=str(RESULTS_DIR / "instance"),
    )
    env.update(extra)
    return env


def empty_broker() -> None:
    """Drop the nudges the POST scenarios published to :data:`BROKER_URL` (none when no
    Redis answers there: the app logged each nudge as not sent)."""
    import redis

    with redis.Redis.from_url(BROKER_URL) as client, suppress(redis.ConnectionError):
        client.flushdb()


def use_app_env() -> None:
    """Put :func:`app_env` into this process's environment (before ``create_app``)."""
    os.environ.pop("REDIS_URL", None)
    os.environ.update(app_env())


def scratch_database(name: str) -> str | None:
    """Drop and re-create ``name``; its SQLAlchemy URL, or None without PostgreSQL."""
    try:
        with connect(ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A connection to ``url``, by default to the bench database in use."""
    return psycopg.connect(url or dsn(), **kwargs)


@contextmanager
def exclusive_run(patience: float):
    """The run lock on the bench database (bench/README.md); gives up after ``patience`` s."""
    key = zlib.crc32(f"taskapp-bench:{db_name()}".encode())
    with connect(ADMIN_DSN, autocommit=True) as conn:
        deadline = time.monotonic() + patience
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
        if not locked:
            print(f"  waiting for another benchmark run on {db_name()} to end", flush=True)
        while not locked:
            if time.monotonic() > deadline:
                raise SystemExit(f"another benchmark run on {db_name()} did not end in time")
            time.sleep(1)
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [key])


def ensure_database() -> None:
    """Create the bench database if missing, its schema brought to head (``flask db upgrade``)."""
    name = db_name()
    with connect(ADMIN_DSN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=app_env(),
        check=True,
        capture_output=True,
    )


def machine_info() -> dict:
    def run(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()

    cpus = [x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("model name")]
    with connect() as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
        settings = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
            "('shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', "
            "'synchronous_commit', 'random_page_cost', 'effective_cache_size')"
        ).fetchall()
    return {
        "nproc": run("nproc"),
        "cpu": cpus[0].split(":", 1)[1].strip() if cpus else "",
        "memory": "".join((run("free", "-h").split("Mem:")[1:] or [""])[0].split()[:1]),
        "postgresql": pg_version,
        "pg_settings": dict(settings),
        "python": sys.version.split()[0],
        "kernel": run("uname", "-r"),
    }


def table(rows: list[list], headers: list[str]) -> str:
    """A Markdown table (also readable as plain text)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def verdict(ok: bool) -> str:
    """How every target is printed: measured, never asserted."""
    return "met" if ok else "MISSED"


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0.99: p99) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def latency_figures(values: list[float]) -> dict[str, float]:
    """Median, p95, p99 and max of ``values`` (inf for each when there are none)."""
    if not values:
        return dict.fromkeys(("median", "p95", "p99", "max"), float("inf"))
    figures = {"median": statistics.median(values), "max": max(values)}
    return figures | {f"p{q}": percentile(values, q / 100) for q in (95, 99)}


def login(client, username: str) -> str:
    """An access token for ``username`` (the bench password), through a Flask test client."""
    answer = client.post("/api/auth/login/", json={"username": username, "password": PASSWORD})
    if answer.status_code != 200:
        raise RuntimeError(
            f"login {username}: {answer.status_code} {answer.get_data(as_text=True)}"
        )
    return answer.get_json()["access"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(argv: list[str], env: dict, log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """``argv`` in a process group of its own (for :func:`stop`), its output in ``log``."""
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it is not gone in 15 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_answering(url: str, process: subprocess.Popen | None = None, timeout=60) -> None:
    """Until a server answers ``url`` at all (a 401 or a 503 will do), or ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited early")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def group_pids(pid: int) -> list[int]:
    """The leader of a process group started by :func:`start` and every process in it."""
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pid)], capture_output=True)
    return sorted({pid, *(int(p) for p in out.stdout.split())})


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_kib(pid: int | str, field: str = "VmRSS") -> int:
    """``VmRSS`` (or the peak, ``VmHWM``) of one process in KiB (0 if it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(x.split()[1]) for x in lines if x.startswith(field + ":")), 0)
