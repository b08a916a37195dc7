"""What runs on each host of the cluster: the same entry points as the compose services,
with the same production settings, each in its host's namespace.

- ``db``: its own PostgreSQL cluster (``initdb``/``pg_ctl`` from the Debian binaries, as
  the ``postgres`` user, in the run's temp dir) and its own ``redis-server`` (RDB on
  shutdown, as the redis:7 image does), both listening on 10.77.0.40 only;
- ``api1`` runs the compose ``migrate`` commands first (``flask db upgrade`` and
  ``flask db grant-app-role taskapp_app`` as the owner), then ``api1``/``api2`` run
  ``gunicorn -c gunicorn.conf.py wsgi:app`` as ``taskapp_app``;
- ``worker1``/``worker2``: ``celery -A wsgi.celery worker``; ``beat``: ``celery -A
  wsgi.celery beat --schedule ... --enable-remote-control``;
- ``edge``: ``python -m reliability.edge`` over api1 and api2 (deploy/nginx);
- ``hooks``: ``python -m reliability.cluster.hooks``.
"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from reliability.cluster import net
from reliability.infra import PG_BIN, RELIABILITY_WEBHOOK_KEY, ROOT, VENV_BIN, Proc, wait_until

APP_ROLE_PASSWORD = "cluster-app-password"
EDGE = f"http://{net.address('edge')}"
HOOKS = f"http://{net.address('hooks')}:9000"
DB = net.address("db")


SUPERVISED = ("api1", "api2", "worker1", "worker2", "beat", "edge")
"""The hosts whose compose service has `restart: unless-stopped`."""


@dataclass
class Exit:
    """A supervised process that ended on its own (not a fault's SIGKILL)."""

    name: str
    code: int | None
    last_error: str


class Cluster:
    def __init__(self, root: Path, quick: bool):
        self.root = root
        self.quick = quick
        self.procs: dict[str, Proc] = {}
        self.exits: list[Exit] = []
        self._stopping = False
        self.pg_dir = root / "db" / "pg"
        self.redis_dir = root / "db" / "redis"
        self.jwt_secret = secrets.token_urlsafe(48)

    # --- settings -------------------------------------------------------------------
    def env(self, host: str, owner: bool = False) -> dict:
        user = "taskapp" if owner else "taskapp_app"
        instance = self.root / host
        instance.mkdir(parents=True, exist_ok=True)
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
        return {
            **keep,
            "PYTHONUNBUFFERED": "1",
            "TASKAPP_ENV": "production",
            "DATABASE_URL": f"postgresql+psycopg://{user}:{APP_ROLE_PASSWORD}@{DB}:5432/taskapp",
            "REDIS_URL": f"redis://{DB}:6379/0",
            "JWT_SECRET_KEY": self.jwt_secret,
            "WEBHOOK_SECRET_KEY": RELIABILITY_WEBHOOK_KEY,
            "TRUSTED_HOSTS": net.address("edge"),
            "TRUSTED_PROXY_COUNT": "1",
            "FORWARDED_ALLOW_IPS": net.address("edge"),
            "TASKAPP_INSTANCE_DIR": str(instance),
            "WEB_CONCURRENCY": "2",
            # Faster than production, so that a short run sees many ticks and retries:
            "OVERDUE_SWEEP_INTERVAL_SECONDS": "2",
            "WEBHOOK_ALLOWED_NETWORKS": f"{net.address('hooks')}/32",
            "WEBHOOK_TIMEOUT_SECONDS": "3",
            "WEBHOOK_RETRY_SCHEDULE": ",".join(["0", "1"] + ["2"] * 90),
            # A delivery a killed or cut-off worker held is queued again after this:
            "WEBHOOK_QUEUE_LEASE_SECONDS": "15" if self.quick else "60",
            # Cheaper password hashing: logins are not what this run measures.
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "8192",
            "PASSWORD_HASH_PARALLELISM": "1",
            "TASKAPP_APP_DB_PASSWORD": APP_ROLE_PASSWORD,
        }

    def start(self, name: str, host: str, argv: list[str], env: dict | None = None) -> Proc:
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        proc = Proc(name, net.in_host(host, argv), logs / f"{name}.log", env or self.env(host))
        self.procs[name] = proc
        return proc

    # --- db host ----------------------------------------------------------------------
    def _pg(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            net.in_host("db", ["runuser", "-u", "postgres", "--", *argv]),
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def postgres_init(self) -> None:
        self.pg_dir.mkdir(parents=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.root / "db", 0o755)
        shutil.chown(self.pg_dir, "postgres", "postgres")
        self._pg(str(PG_BIN / "initdb"), "-D", str(self.pg_dir / "data"), "-A", "trust",
                 "-U", "postgres", "-E", "UTF8", "--no-sync")  # fmt: skip
        with open(self.pg_dir / "data" / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {net.NET}.0/24 trust\n")  # the cluster's hosts only
        self.postgres_start()
        with self.pg_connect("postgres") as conn:
            conn.execute("CREATE ROLE taskapp SUPERUSER LOGIN")
            conn.execute("CREATE DATABASE taskapp OWNER taskapp")

    def postgres_start(self) -> None:
        options = f"-p 5432 -c listen_addresses={DB} -c unix_socket_directories={self.pg_dir}"
        options += " -c max_connections=200 -c fsync=off"
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.pg_dir / "data"), "-l",
                 str(self.pg_dir / "postgres.log"), "-o", options, "-w", "start")  # fmt: skip
        wait_until(lambda: self.pg_connect("postgres").close() or True, 60, "PostgreSQL")

    def postgres_stop(self, mode: str = "fast") -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.pg_dir / "data"), "-m", mode, "-w",
                 "stop", check=False)  # fmt: skip

    def pg_connect(self, db: str = "taskapp") -> psycopg.Connection:
        return psycopg.connect(
            f"postgresql://postgres@{DB}:5432/{db}", autocommit=True, connect_timeout=3
        )

    def redis_start(self) -> None:
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--bind", DB, "--port", "6379", "--dir", str(self.redis_dir),
                "--save", "3600 1 300 100 60 10000", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no"]  # fmt: skip
        self.start("redis", "db", argv, dict(os.environ))
        wait_until(lambda: _redis_ping(), 30, "Redis")

    def redis_stop(self) -> None:
        """SIGTERM: Redis writes its RDB and exits, as `docker compose stop redis` does."""
        proc = self.procs.pop("redis")
        proc.signal_group(signal.SIGTERM)
        proc.popen.wait(timeout=30)
        proc.stop()

    # --- app hosts --------------------------------------------------------------------
    def migrate(self) -> None:
        """The compose `migrate` service's command, as the owner, on api1."""
        for args in (["db", "upgrade"], ["db", "grant-app-role", "taskapp_app"]):
            subprocess.run(
                net.in_host("api1", [str(VENV_BIN / "flask"), "--app", "wsgi", *args]),
                cwd=ROOT, env=self.env("api1", owner=True), check=True, capture_output=True,
                timeout=180, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def flask(self, *args: str) -> str:
        result = subprocess.run(
            net.in_host("api1", [str(VENV_BIN / "flask"), "--app", "wsgi", *args]),
            cwd=ROOT, env=self.env("api1"), capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if result.returncode:
            raise RuntimeError(f"flask {args} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def api(self, host: str) -> Proc:
        argv = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"]
        proc = self.start(host, host, argv)
        url = f"http://{net.address(host)}:8000/healthz"
        wait_until(
            lambda: (
                httpx.get(url, headers={"Host": net.address("edge")}, timeout=2).status_code == 200
            ),
            90,
            f"{host} /healthz",
            interval=0.3,
        )
        return proc

    def worker(self, host: str) -> Proc:
        argv = [str(VENV_BIN / "celery"), "-A", "wsgi.celery", "worker", "--loglevel=INFO",
                "-n", f"{host}@%h"]  # fmt: skip
        proc = self.start(host, host, argv)
        wait_until(lambda: " ready." in proc.log_text(), 90, f"{host} ready", interval=0.3)
        return proc

    def beat(self) -> Proc:
        schedule = self.root / "beat" / "celerybeat-schedule"
        argv = [str(VENV_BIN / "celery"), "-A", "wsgi.celery", "beat", "--loglevel=INFO",
                "--schedule", str(schedule), "--enable-remote-control"]  # fmt: skip
        proc = self.start("beat", "beat", argv)
        wait_until(lambda: "Sending due task" in proc.log_text(), 60, "beat's first tick")
        return proc

    def edge(self) -> Proc:
        argv = [sys.executable, "-m", "reliability.edge", "--listen",
                f"{net.address('edge')}:80", "--upstream", f"{net.address('api1')}:8000",
                "--upstream", f"{net.address('api2')}:8000"]  # fmt: skip
        proc = self.start("edge", "edge", argv, dict(os.environ))
        wait_until(
            lambda: httpx.get(f"{EDGE}/healthz", timeout=2).status_code == 200, 180, "edge + api"
        )
        return proc

    def hooks(self) -> Proc:
        argv = [sys.executable, "-m", "reliability.cluster.hooks", "--listen",
                f"{net.address('hooks')}:9000"]  # fmt: skip
        proc = self.start("hooks", "hooks", argv, dict(os.environ))
        wait_until(lambda: httpx.get(f"{HOOKS}/_records", timeout=2).status_code == 200, 30,
                   "hooks")  # fmt: skip
        return proc

    def kill(self, name: str) -> None:
        self.procs.pop(name).kill()

    def start_host(self, name: str) -> Proc:
        """Start one of the SUPERVISED hosts again, by name."""
        if name.startswith("api"):
            return self.api(name)
        if name.startswith("worker"):
            return self.worker(name)
        return {"beat": self.beat, "edge": self.edge}[name]()

    # --- restart: unless-stopped ------------------------------------------------------
    def supervise(self) -> None:
        """What compose's `restart: unless-stopped` does for the app's services: a
        supervised process that exits on its own is started again (a second later), and
        the exit is recorded for the table. A fault's SIGKILL is not an exit here: the
        fault takes the process out of ``procs`` first and restarts it itself."""

        def watch() -> None:
            while not self._stopping:
                for name in SUPERVISED:
                    proc = self.procs.get(name)
                    if proc is not None and not proc.alive() and self.procs.pop(name, None):
                        gone = Exit(name, proc.popen.returncode, _last_error(proc))
                        self.exits.append(gone)
                        print(f"supervisor: {name} exited ({gone.code}): {gone.last_error};"
                              " starting it again", flush=True)  # fmt: skip
                        proc.stop()
                        threading.Thread(target=self._restart, args=(name,), daemon=True).start()
                time.sleep(0.5)

        threading.Thread(target=watch, name="supervisor", daemon=True).start()

    def _restart(self, name: str) -> None:
        time.sleep(1)
        try:
            self.start_host(name)
        except Exception as error:  # noted in the run's output; the drain shows the rest
            print(f"supervisor: restarting {name} failed: {error}", flush=True)

    def shutdown(self) -> None:
        """Everything at once: SIGTERM (the edge removes its temp dir), 3 s, SIGKILL."""
        self._stopping = True
        procs = [self.procs.pop(name) for name in list(self.procs)]
        for proc in procs:
            proc.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(proc.alive() for proc in procs):
            time.sleep(0.1)
        for proc in procs:
            proc.signal_group(signal.SIGKILL)
            proc.stop(timeout=5)
        if (self.pg_dir / "data").exists():
            self.postgres_stop("immediate")


def _last_error(proc: Proc) -> str:
    """The last CRITICAL or ERROR line the process logged, shortened."""
    logged = proc.log_text().splitlines()
    lines = [line for line in logged if '"CRITICAL"' in line]
    lines = lines or [line for line in logged if '"ERROR"' in line]
    if not lines:
        return ""
    found = re.search(r'"msg": "((?:[^"\\]|\\.){0,200})', lines[-1])
    return found.group(1).replace('\\"', '"')[:160] if found else lines[-1][:160]


def _redis_ping() -> bool:
    import redis

    return redis.Redis(host=DB, port=6379, socket_timeout=2, socket_connect_timeout=2).ping()


def wait(seconds: float) -> None:
    time.sleep(seconds)
