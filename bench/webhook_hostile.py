"""Webhook latency of a healthy user while another user's receivers fail and hang.

    python -m bench.webhook_hostile [--changes 130] [--mode embedded|postgresql|both]
        [--redis-url redis://127.0.0.1:6379/0] [--pg-database taskapp_bench_webhooks]

Per mode (as ``bench.webhook_latency``: a fresh database, one real Celery worker with
beat inside, default settings, so WEBHOOK_TIMEOUT_SECONDS = 10 and the default retry
schedule) two INTERNs:

- ``hostile`` registers WEBHOOK_MAX_PER_USER (10) webhooks, 8 of them failing: 3 answer
  500, 2 drip a header line every second, 1 drips its body a byte a second, 2 accept
  and never answer; the other 2 answer 204. They make ``--changes`` task changes
  (creations and edits, 50-150 ms apart);
- ``healthy`` has one webhook answering 204 and creates a task after every third
  hostile change: the time from the API's answer (after the commit) to the receiver's
  arrival is its latency.

Prints, per mode, the healthy webhook's median, p95 and max, the targets (median < 1 s,
max < 3 s) and whether each is met, and how many requests the hostile receivers got;
first for a baseline run in the same invocation (the same changes, the hostile user with
no webhooks), then with the hostile webhooks, and the ratio of the two medians.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.webhook_latency import PASSWORD, ROOT, Arrivals, prepare_environment

sys.path.insert(0, str(ROOT / "tests"))
from drip import DripReceiver  # the tests' hostile receiver

HOSTILE = [500, 500, 500, "headers", "headers", "body", "silent", "silent", 204, 204]
MEDIAN_TARGET, MAX_TARGET = 1.0, 3.0


def start_worker(env: dict, workdir: Path) -> subprocess.Popen:
    """The worker with beat inside, as ``scripts/run`` starts it; returns once it is
    ready and beat has sent its first tick (a loaded machine can take 10 s or more)."""
    log = workdir / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "wsgi.celery", "worker", "--beat"]
    command += ["--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while "Sending due task webhooks-tick" not in log.read_text():
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"the worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


def login(client, username: str) -> dict:
    answer = client.post("/api/auth/login/", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.get_json()['access']}"}


def make_app(env: dict):
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from taskapp import create_app
    from taskapp.extensions import db
    from taskapp.models import Role
    from taskapp.users import service as users
    from taskapp.users.passwords import PasswordHashing

    app = create_app({"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"]})
    with app.app_context():
        for name in ("hostile", "healthy"):
            email = f"{name}@example.com"
            hashing = PasswordHashing.of(app)
            users.create_user(db.session, name, PASSWORD, Role.INTERN, email, hashing=hashing)
        db.session.commit()
    return app


def register(client, headers: dict, url: str) -> None:
    answer = client.post("/api/webhooks/", json={"url": url}, headers=headers)
    assert answer.status_code == 201, answer.get_json()


def make_changes(client, hostile: dict, healthy: dict, changes: int) -> dict[int, float]:
    """The hostile user's changes, with one of the healthy user's after every third;
    returns when each healthy change was committed."""
    committed: dict[int, float] = {}
    hostile_tasks: list[int] = []
    for n in range(changes):
        if hostile_tasks and n % 2:
            task = random.choice(hostile_tasks)
            body = {"title": f"hostile {n}", "description": "edited"}
            client.patch(f"/api/tasks/{task}/", json=body, headers=hostile)
        else:
            answer = client.post("/api/tasks/", json={"title": f"h {n}"}, headers=hostile)
            hostile_tasks.append(answer.get_json()["id"])
        if n % 3 == 2:
            answer = client.post("/api/tasks/", json={"title": f"ok {n}"}, headers=healthy)
            committed[answer.get_json()["id"]] = time.monotonic()
        time.sleep(random.uniform(0.05, 0.15))
    return committed


def measure(mode: str, args, *, hostile_hooks: bool = True) -> dict:
    """One run; without ``hostile_hooks`` the hostile user makes the same changes with
    no webhook at all (the baseline)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"webhook-hostile-{mode}-"))
    env = prepare_environment(mode, workdir, args)
    app = make_app(env)
    client = app.test_client()
    hostile, healthy = login(client, "hostile"), login(client, "healthy")
    arrivals = Arrivals()
    with DripReceiver(interval=1.0) as drip:
        for n, behaviour in enumerate(HOSTILE if hostile_hooks else []):
            register(client, hostile, drip.url(f"/h{n}", behaviour))
        register(client, healthy, arrivals.url)
        worker = start_worker(env, workdir)
        try:
            committed = make_changes(client, hostile, healthy, args.changes)
            deadline = time.monotonic() + args.timeout
            while len(arrivals.at) < len(committed) and time.monotonic() < deadline:
                time.sleep(0.1)
            hostile_requests = len(drip.held)
        finally:
            worker.terminate()
            worker.wait(30)
            arrivals.server.shutdown()
            from taskapp.extensions import db

            with app.app_context():
                db.engine.dispose()
    label = mode if hostile_hooks else f"{mode}, baseline (no hostile webhooks)"
    return summary(label, args.changes, committed, arrivals.at, hostile_requests)


def summary(mode, changes, committed, arrived, hostile_requests) -> dict:
    if os.environ.get("WEBHOOK_LATENCY_TRACE"):
        print(" ".join(f"{i}:{arrived[i] - t:.2f}" for i, t in committed.items() if i in arrived))
    latencies = sorted(arrived[i] - t for i, t in committed.items() if i in arrived)
    inf = float("inf")
    return {
        "mode": mode,
        "changes": changes,
        "healthy": len(committed),
        "arrived": len(latencies),
        "median_s": statistics.median(latencies) if latencies else inf,
        "p95_s": latencies[int(0.95 * (len(latencies) - 1))] if latencies else inf,
        "max_s": latencies[-1] if len(latencies) == len(committed) else inf,
        "hostile_requests": hostile_requests,
    }


def print_row(r: dict) -> None:
    met_median = "met" if r["median_s"] < MEDIAN_TARGET else "NOT met"
    met_max = "met" if r["max_s"] < MAX_TARGET else "NOT met"
    print(
        f"| {r['mode']} | {r['changes']} | {r['healthy']} | {r['arrived']} "
        f"| {r['median_s']:.3f} s | {r['p95_s']:.3f} s | {r['max_s']:.3f} s "
        f"| {met_median} | {met_max} | {r['hostile_requests']} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=130)
    parser.add_argument("--mode", choices=["embedded", "postgresql", "both"], default="both")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg-database", default="taskapp_bench_webhooks")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    modes = ["embedded", "postgresql"] if args.mode == "both" else [args.mode]
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(
        "| mode | hostile changes | healthy changes | arrived | median | p95 | max "
        "| median < 1 s | max < 3 s | hostile requests |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode in modes:
        baseline = measure(mode, args, hostile_hooks=False)
        print_row(baseline)
        loaded = measure(mode, args)
        print_row(loaded)
        ratio = loaded["median_s"] / baseline["median_s"]
        print(f"| {mode}: median with / without the hostile webhooks | {ratio:.2f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
