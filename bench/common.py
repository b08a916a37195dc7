"""Settings and helpers shared by the benchmark scripts.

Everything runs against one dedicated database on 127.0.0.1:5432 and only loopback
addresses: ``taskapp_bench`` for the benchmark, ``taskapp_bench_smoke`` for the smoke run
(``python -m bench --smoke``). The one in use is named by the environment variable
``BENCH_DATABASE`` (default ``taskapp_bench``), so the processes the benchmark starts
(gunicorn, the sweep's children, ``flask db upgrade``) use the same one. No other name is
accepted: the ``test`` and ``taskapp_test`` databases are never touched.
"""

import os
import subprocess
import sys
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
VENV_BIN = Path(sys.executable).parent

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
DATABASE_ENV = "BENCH_DATABASE"
FULL_DATABASE = "taskapp_bench"
SMOKE_DATABASE = "taskapp_bench_smoke"
BENCH_DATABASES = (FULL_DATABASE, SMOKE_DATABASE)
FORBIDDEN_DATABASES = {"test", "taskapp_test"}

ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"

PASSWORD = "bench-password-not-secret"
JWT_SECRET = "bench-only-jwt-secret-0123456789-abcdefghijklmnop"

assert not FORBIDDEN_DATABASES & set(BENCH_DATABASES)
assert PG_HOST in {"127.0.0.1", "localhost", "::1"}, "the benchmark only uses loopback"


def db_name() -> str:
    """The bench database in use (``BENCH_DATABASE``); only the two bench names pass."""
    name = os.environ.get(DATABASE_ENV, FULL_DATABASE)
    # A branch whose migrations are not on main yet seeds its own taskapp_bench_<branch>
    # (bench/changes_feed.py): the shared bench database keeps main's schema.
    if name not in BENCH_DATABASES and not name.startswith(FULL_DATABASE + "_"):
        raise SystemExit(
            f"{DATABASE_ENV}={name!r}: the benchmark only uses {' or '.join(BENCH_DATABASES)}"
        )
    return name


def use_database(name: str) -> None:
    """Make ``name`` the bench database of this process and of every process it starts."""
    os.environ[DATABASE_ENV] = name
    db_name()


def dsn() -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{db_name()}"


def database_url() -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{db_name()}"


BENCH_WEBHOOK_KEY = "YmVuY2gtd2ViaG9vay1rZXktMzItYnl0ZXMtbG9uZyE="
"""A production-shaped key (urlsafe base64 of 32 bytes) for benchmark runs only."""


def app_env(**extra: str) -> dict[str, str]:
    """Environment for the app under benchmark (gunicorn, flask CLI, in-process)."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DATABASE_URL=database_url(),
        JWT_SECRET_KEY=JWT_SECRET,
        TASKAPP_ENV="production",
        WEBHOOK_SECRET_KEY=BENCH_WEBHOOK_KEY,
        TRUSTED_HOSTS="127.0.0.1,localhost",
        # One run lasts a few minutes; the default 15-minute lifetime would be enough,
        # but a long one keeps a slow machine from ending a scenario with 401s.
        JWT_ACCESS_TOKEN_LIFETIME_SECONDS="7200",
        TASKAPP_INSTANCE_DIR=str(RESULTS_DIR / "instance"),
    )
    env.update(extra)
    return env


def use_app_env() -> None:
    """Put :func:`app_env` into this process's environment (before ``create_app``)."""
    os.environ.pop("REDIS_URL", None)
    os.environ.update(app_env())


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A connection to ``url``, by default to the bench database in use."""
    return psycopg.connect(url or dsn(), **kwargs)


@contextmanager
def exclusive_run(patience: float):
    """Hold a PostgreSQL advisory lock named after the bench database for the whole run,
    so that a second run on the same database (another worktree, a CI job) waits for the
    first instead of reseeding it underneath; gives up after ``patience`` seconds."""
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


def ensure_database() -> bool:
    """Create the bench database if missing and bring its schema to head with the project's
    own migrations (``flask db upgrade``). Returns True if the database was created."""
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
    return not exists


def machine_info() -> dict:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_line = run("free", "-h").splitlines()
    with connect() as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', "
                "'synchronous_commit', 'random_page_cost', 'effective_cache_size')"
            ).fetchall()
        )
    return {
        "nproc": run("nproc").strip(),
        "cpu": cpu,
        "memory": mem_line[1].split()[1] if len(mem_line) > 1 else "",
        "postgresql": pg_version,
        "pg_settings": settings,
        "python": sys.version.split()[0],
        "kernel": run("uname", "-r").strip(),
    }


@contextmanager
def timed(label: str, sink: dict | None = None):
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    if sink is not None:
        sink[label] = elapsed
    print(f"  {label}: {elapsed:.2f} s", flush=True)


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
