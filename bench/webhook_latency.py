"""Webhook latency: from a committed change to the receiver, with the worker running.

    python -m bench.webhook_latency [--changes 200] [--mode embedded|postgresql|both]
        [--redis-url redis://127.0.0.1:6379/0] [--pg-database taskapp_bench_webhooks]

For each mode it builds a fresh database with the project's migrations, starts one real
Celery worker with beat inside (``celery -A wsgi.celery worker --beat --pool=solo``, the
default settings: a relay tick every ``WEBHOOK_RELAY_INTERVAL_SECONDS`` = 1 s), registers
an ADMIN's webhook pointing at a receiver thread on 127.0.0.1, then makes ``--changes``
task creations through the app in this process, one at a time with a random pause of
50-150 ms, and reports, per change, the time from the API's answer (the commit is done
before it) to the receiver's arrival: median, p95 and max. Modes:

- ``embedded``: SQLite database and the SQLite (SQLAlchemy) broker, in a temporary dir;
- ``postgresql``: PostgreSQL on 127.0.0.1:5432 (database ``--pg-database``, dropped and
  re-created) and Redis at ``--redis-url`` (the db number is flushed: give it a spare one).
Every process started is stopped; the run is bounded (``--timeout`` seconds per mode).
WEBHOOK_LATENCY_TRACE=1 also prints every latency in commit order.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import FAST_HASHING, JWT_SECRET, PASSWORD, ROOT, scratch_database


class Arrivals:
    def __init__(self):
        self.at: dict[int, float] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def _handler(self):
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                now = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if body["type"] == "task.created":
                    with arrivals.lock:
                        arrivals.at.setdefault(body["data"]["task"]["id"], now)
                self.send_response(204)
                self.end_headers()

        return Handler


def prepare_environment(mode: str, workdir: Path, args) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_", "REDIS_"))}
    env.update(
        JWT_SECRET_KEY=JWT_SECRET,
        TASKAPP_INSTANCE_DIR=str(workdir),
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        **{key: str(value) for key, value in FAST_HASHING.items()},
    )
    env.pop("CELERY_BROKER_URL", None)
    if mode == "embedded":
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'taskapp.sqlite'}"
    else:
        import redis

        env["DATABASE_URL"] = scratch_database(args.pg_database)
        env["CELERY_BROKER_URL"] = args.redis_url
        redis.Redis.from_url(args.redis_url).flushdb()
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    create = [*flask, "users", "create", "bench", "--role", "ADMIN", "--password", PASSWORD]
    subprocess.run(create, cwd=ROOT, env=env, check=True, capture_output=True)
    return env


def start_worker(env: dict, workdir: Path) -> subprocess.Popen:
    log = workdir / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "wsgi.celery", "worker", "--beat"]
    command += ["--pool=solo", "--loglevel=WARNING", "--without-gossip", "--without-mingle"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    time.sleep(4)  # beat's first tick and the worker's consumer start
    return process


def measure(mode: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"webhook-latency-{mode}-"))
    env = prepare_environment(mode, workdir, args)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from taskapp import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"]})
    client = app.test_client()
    login = client.post("/api/auth/login/", json={"username": "bench", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.get_json()['access']}"}
    arrivals = Arrivals()
    hook = client.post("/api/webhooks/", json={"url": arrivals.url}, headers=headers)
    assert hook.status_code == 201, hook.get_json()
    worker = start_worker(env, workdir)
    committed: dict[int, float] = {}
    try:
        for n in range(args.changes):
            response = client.post("/api/tasks/", json={"title": f"bench {n}"}, headers=headers)
            committed[response.get_json()["id"]] = time.monotonic()
            time.sleep(random.uniform(0.05, 0.15))
        deadline = time.monotonic() + args.timeout
        while len(arrivals.at) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(30)
        arrivals.server.shutdown()
        with app.app_context():
            from taskapp.extensions import db

            db.engine.dispose()
    in_order = [arrivals.at[i] - t for i, t in committed.items() if i in arrivals.at]
    if os.environ.get("WEBHOOK_LATENCY_TRACE"):
        print(" ".join(f"{x:.2f}" for x in in_order))
    latencies = sorted(in_order)
    return {
        "mode": mode,
        "changes": len(committed),
        "arrived": len(latencies),
        "median_s": statistics.median(latencies),
        "p95_s": latencies[int(0.95 * (len(latencies) - 1))],
        "max_s": latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--mode", choices=["embedded", "postgresql", "both"], default="both")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg-database", default="taskapp_bench_webhooks")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    modes = ["embedded", "postgresql"] if args.mode == "both" else [args.mode]
    print("| mode | changes | arrived | median | p95 | max |")
    print("|---|---|---|---|---|---|")
    for mode in modes:
        r = measure(mode, args)
        print(
            f"| {r['mode']} | {r['changes']} | {r['arrived']} | {r['median_s']:.3f} s "
            f"| {r['p95_s']:.3f} s | {r['max_s']:.3f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
