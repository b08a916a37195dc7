"""Real processes for the observability tests: gunicorn as gunicorn.conf.py runs it, a
Celery worker and a Celery beat as compose runs them, each logging to its own file.
Every one binds free ports on 127.0.0.1 and is stopped by the fixture that started it."""

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from helpers import JWT_SECRET, wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WEBHOOK_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
PRODUCTION = {
    "TASKAPP_ENV": "production",
    "JWT_SECRET_KEY": JWT_SECRET,
    "WEBHOOK_SECRET_KEY": WEBHOOK_KEY,
    "TRUSTED_HOSTS": "127.0.0.1,localhost",
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8",
    "PASSWORD_HASH_PARALLELISM": "1",
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_RETRY_SCHEDULE": "0,1,2",
    "WEBHOOK_RELAY_INTERVAL_SECONDS": "0.3",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
}
"""A production configuration (secrets set, JSON logs by default) that is quick to run."""


class Processes:
    def __init__(self, tmp_path: Path, base_env: dict):
        self.tmp_path = tmp_path
        self.base_env = base_env
        self.running: list[subprocess.Popen] = []

    def _env(self, overrides: dict) -> dict:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TASKAPP_", "FORWARDED", "LOG_", "METRICS_", "PROMETHEUS_"))
        }
        inherited.pop("REDIS_URL", None)
        return {
            **inherited,
            "TASKAPP_INSTANCE_DIR": str(self.tmp_path),
            **self.base_env,
            **overrides,
        }

    def _start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = self.tmp_path / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self._env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log = log
        self.running.append(process)
        return process

    def gunicorn(self, **env) -> tuple[subprocess.Popen, int]:
        """gunicorn -c gunicorn.conf.py wsgi:app; returns the process and its port."""
        env = {"GUNICORN_BIND": "127.0.0.1:0", "WEB_CONCURRENCY": "2", **env}
        process = self._start(
            f"gunicorn-{len(self.running)}",
            [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            env,
        )

        def port():
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", process.log.read_text())
            return found and "Booting worker" in process.log.read_text() and int(found.group(1))

        bound = wait_for(port, timeout=60)
        assert bound, process.log.read_text()
        assert wait_for(lambda: _answers(bound), timeout=30), process.log.read_text()
        return process, bound

    def celery(self, kind: str, *extra: str, **env) -> subprocess.Popen:
        """``celery -A wsgi.celery worker|beat`` (the worker: solo pool, quiet banner)."""
        command = [sys.executable, "-m", "celery", "-A", "wsgi.celery", "--quiet", kind]
        command += ["--loglevel=INFO"]
        if kind == "worker":
            command += ["--pool=solo", "--without-gossip", "--without-mingle"]
        process = self._start(f"{kind}-{len(self.running)}", command + list(extra), env)
        ready = "ready." if kind == "worker" else "beat: Starting"
        assert wait_for(lambda: ready in process.log.read_text(), timeout=60), (
            process.log.read_text()
        )
        return process

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2):
            return True
    except OSError as error:
        return getattr(error, "code", None) is not None  # any HTTP answer: it is up


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()
