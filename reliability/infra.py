"""Throwaway servers for the fault and load scripts, all on loopback ports of their own.

- :class:`PgCluster`: a PostgreSQL cluster in a temporary directory (``initdb`` +
  ``pg_ctl``, run as the ``postgres`` user when we are root), which a script may stop,
  crash and start again at will. Never the shared server on 5432.
- :class:`RedisServer`: a ``redis-server`` without persistence.
- :class:`Proc`: any other child (gunicorn, a Celery worker) in its own process group,
  so that stopping it also stops its workers.
- :class:`Stack`: owns all of the above for one scenario and tears everything down in
  ``__exit__`` (reverse order), whatever happened.

Every wait here is bounded (:func:`wait_until`); nothing listens on anything but
127.0.0.1.
"""

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
PG_BIN = (
    Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
    if glob.glob("/usr/lib/postgresql/*/bin")
    else None
)
RELIABILITY_WEBHOOK_KEY = "cmVsaWFiaWxpdHktd2ViaG9vay1rZXktMzItYnl0ZSE="
"""A production-shaped webhook key (urlsafe base64 of 32 bytes), for these runs only."""
SHARED_PORTS = {5432, 6379}
"""The shared PostgreSQL and Redis that other people's tests use: never ours."""
APP_ENV_DROP = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "JWT_SECRET_KEY",
    "WEBHOOK_SECRET_KEY",
    "TRUSTED_HOSTS",
    "TASKAPP_ENV",
    "TASKAPP_INSTANCE_DIR",
)


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval=0.05):
    """Poll ``predicate`` until it returns something truthy; that value. TimeoutError
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # a server that is still coming up
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def require_free(port: int) -> None:
    if port in SHARED_PORTS:
        raise SystemExit(f"port {port} belongs to a shared server; pick another")
    if port_open(port):
        raise SystemExit(f"127.0.0.1:{port} is already in use; pick another port")


class Proc:
    """A child process in its own session (process group), output to a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict, cwd=ROOT):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop())
        self._log_start = self._log.tell()
        """A host started again appends to its log: this process's output starts here."""
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group at once (no shutdown handlers run)."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Whatever is left in the group (a worker the master did not reap): SIGKILL.
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()

    def log_text(self) -> str:
        """What this process wrote (not what an earlier one wrote to the same log)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_start)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class PgCluster:
    """A private PostgreSQL cluster under ``root``: data, socket and log in one directory."""

    def __init__(self, root: Path, port: int, settings: dict[str, str] | None = None):
        if PG_BIN is None:
            raise SystemExit("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.port = port
        self.dir = root / "pg"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.settings = {"listen_addresses": HOST, "unix_socket_directories": str(self.dir)}
        self.settings.update(settings or {})
        self.initialised = False

    def _run(self, *argv: str, timeout: float = 120, check: bool = True):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            stdin=subprocess.DEVNULL,
        )

    def init(self) -> None:
        require_free(self.port)
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.initialised = True

    def start(self, timeout: float = 60) -> float:
        """Start the server and wait until it accepts connections; seconds taken."""
        started = time.monotonic()
        options = f"-p {self.port} " + " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(int(timeout)),
            "start",
        )
        wait_until(lambda: self.connect(connect_timeout=2).close() or True, timeout, "PostgreSQL")
        return time.monotonic() - started

    def stop(self, mode: str = "fast", timeout: float = 60) -> float:
        """``pg_ctl stop -m fast|immediate|smart``; seconds taken."""
        started = time.monotonic()
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            mode,
            "-w",
            "-t",
            str(int(timeout)),
            "stop",
        )
        return time.monotonic() - started

    def running(self) -> bool:
        if not self.initialised:
            return False
        return (
            self._run(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status", check=False
            ).returncode
            == 0
        )

    def destroy(self) -> None:
        if self.initialised:
            try:
                if self.running():
                    self.stop("immediate", timeout=30)
            except Exception:
                pass
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():  # pg_ctl failed: kill the postmaster ourselves
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{db}"

    def sqlalchemy_url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{db}"

    def connect(self, db: str = "postgres", **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn(db), **kwargs)

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


class RedisServer:
    """``redis-server`` on a port of its own, no RDB, no AOF."""

    def __init__(self, root: Path, port: int):
        self.port = port
        self.dir = root / "redis"
        self.proc: Proc | None = None
        self.url = f"redis://{HOST}:{port}/0"

    def start(self, timeout: float = 20) -> None:
        require_free(self.port)
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        self.proc = Proc("redis", argv, self.dir / "redis.log", dict(os.environ))
        wait_until(lambda: self.client().ping(), timeout, "Redis")

    def client(self):
        import redis

        return redis.Redis(host=HOST, port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Stop the server (SIGTERM: shutdown; SIGKILL: crash) and wait for the port to close."""
        if self.proc is None:
            return
        self.proc.signal_group(sig)
        try:
            self.proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.signal_group(signal.SIGKILL)
        self.proc.stop()
        wait_until(lambda: not port_open(self.port), timeout, "Redis port to close")
        self.proc = None

    def destroy(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=5)
            self.proc = None


class Stack:
    """PostgreSQL (+ Redis) + the app's processes for one scenario; torn down on exit.

    ``with Stack("faults-redis", pg_port=..., redis_port=...) as stack:`` then
    ``stack.migrate()``, ``stack.create_user(...)``, ``stack.gunicorn(...)``,
    ``stack.celery_worker(...)``.
    """

    def __init__(
        self,
        name: str,
        *,
        pg_port: int,
        redis_port: int | None,
        database: str = "taskapp",
        pg_settings: dict[str, str] | None = None,
        keep: bool = False,
        extra_env: dict[str, str] | None = None,
    ):
        self.name = name
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix=f"taskapp-{name}-"))
        os.chmod(self.root, 0o755)  # the postgres user must reach root/pg
        self.instance = self.root / "instance"
        self.instance.mkdir()
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.pg = PgCluster(self.root, pg_port, pg_settings)
        self.redis = RedisServer(self.root, redis_port) if redis_port else None
        self.database = database
        self.jwt_secret = secrets.token_urlsafe(48)
        self.extra_env = extra_env or {}
        self.procs: list[Proc] = []

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "Stack":
        try:
            self.pg.init()
            self.pg.start()
            self.pg.create_database(self.database)
            if self.redis:
                self.redis.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for proc in reversed(self.procs):
            try:
                proc.stop(timeout=10)
            except Exception as error:  # keep tearing down the rest
                print(f"  cleanup: {proc.name}: {error}", file=sys.stderr)
        self.procs.clear()
        if self.redis:
            self.redis.destroy()
        self.pg.destroy()
        if self.keep:
            print(f"  kept {self.root} (logs, data)")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- the app ---------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in APP_ENV_DROP}
        env.update(
            DATABASE_URL=self.pg.sqlalchemy_url(self.database),
            JWT_SECRET_KEY=self.jwt_secret,
            TASKAPP_ENV="production",
            WEBHOOK_SECRET_KEY=RELIABILITY_WEBHOOK_KEY,
            TRUSTED_HOSTS="127.0.0.1,localhost",
            TASKAPP_INSTANCE_DIR=str(self.instance),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
        )
        if self.redis:
            env["REDIS_URL"] = self.redis.url
        env.update(self.extra_env)
        env.update(extra)
        return env

    def flask(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def migrate(self) -> None:
        self.flask("db", "upgrade")

    def create_user(self, username: str, password: str, role: str = "ADMIN") -> None:
        self.flask("users", "create", username, "--role", role, "--password", password)

    def start(self, name: str, argv: list[str], **env: str) -> Proc:
        proc = Proc(name, argv, self.logs / f"{name}.log", self.env(**env))
        self.procs.append(proc)
        return proc

    def gunicorn(
        self,
        port: int,
        *,
        workers: int = 2,
        threads: int = 1,
        access_log: bool = True,
        timeout: float = 60,
    ) -> Proc:
        require_free(port)
        argv = [
            str(VENV_BIN / "gunicorn"),
            "wsgi:app",
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            str(workers),
            "--error-logfile",
            "-",
            "--worker-tmp-dir",
            "/dev/shm",
            "--graceful-timeout",
            "5",
            "--no-control-socket",
        ]
        if threads > 1:
            argv += ["--worker-class", "gthread", "--threads", str(threads)]
        if access_log:
            argv += ["--access-logfile", "-"]
        proc = self.start(f"gunicorn-{port}", argv)

        def ready():
            if not proc.alive():
                raise SystemExit(f"gunicorn exited:\n{proc.tail()}")
            import httpx

            return httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200

        wait_until(ready, timeout, "gunicorn /healthz", interval=0.2)
        return proc

    def celery_worker(self, name: str, *, timeout: float = 60) -> Proc:
        argv = [
            str(VENV_BIN / "celery"),
            "-A",
            "wsgi.celery",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        proc = self.start(name, argv)

        def ready():
            if not proc.alive():
                raise SystemExit(f"celery worker exited:\n{proc.tail()}")
            return " ready." in proc.log_text()

        wait_until(ready, timeout, f"celery worker {name}", interval=0.2)
        return proc


def install_signal_handlers() -> None:
    """SIGTERM / SIGHUP become SystemExit so that every ``finally`` and ``__exit__`` runs."""

    def _exit(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit)


def hard_deadline(seconds: int) -> None:
    """Raise TimeoutError in the main thread after ``seconds`` (cleanup still runs)."""

    def _expired(_signum, _frame):
        raise TimeoutError(f"hard time limit of {seconds} s reached")

    signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
