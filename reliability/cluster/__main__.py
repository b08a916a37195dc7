"""``python -m reliability.cluster [--quick]``: taskapp's production topology as separate
hosts (network namespaces), under load, through a series of faults, then reconciled.

Hosts: edge (nginx, deploy/nginx), api1 + api2 (gunicorn), worker1 + worker2 (Celery),
beat, db (PostgreSQL + Redis of their own), hooks (a webhook receiver). Clients in the root
namespace drive writes and reads through the edge while these faults follow one another:
SIGKILL of api1 mid-burst; SIGKILL of worker1 mid-delivery; worker2's link down; a
PostgreSQL restart; Redis stopped; beat killed and restarted. Then the run drains
(webhooks delivered, overdue tasks swept) and prints the reconciliation table. Exit 1 when
an invariant fails. Needs root, ``ip netns``, the PostgreSQL server binaries, redis-server,
nginx, and the dev requirements (``standardwebhooks``). Namespaces and processes are
removed at exit, whatever happens, and at start if an earlier run left any.
"""

import argparse
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from reliability.cluster import net
from reliability.cluster.hosts import EDGE, HOOKS, Cluster
from reliability.cluster.reconcile import Fault, reconcile
from reliability.cluster.workload import PASSWORD, Load
from reliability.infra import hard_deadline, install_signal_handlers, wait_until

ADMIN = "cluster-admin"
HOSTS = ("api1", "api2")


class Timings:
    """How long each fault lasts; --quick shortens the outages, never skips one."""

    def __init__(self, quick: bool):
        self.warmup = 3 if quick else 10
        self.gap = 3 if quick else 10
        self.restart_after = 2 if quick else 5
        self.link_down = 6 if quick else 20
        self.redis_down = 5 if quick else 15
        self.drain = 120  # the drain fails when nothing moves for this long (a stall)
        # Every change goes to one webhook, which the fair dispatcher serves two at a time
        # (docs/webhooks.md): 3 clients write faster than that drains after the faults.
        self.clients = 2 if quick else 6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.cluster", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short outages (under 2 minutes)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (logs, data); kept on failure"
    )
    parser.add_argument("--time-limit", type=int, default=900)
    args = parser.parse_args(argv)
    install_signal_handlers()
    hard_deadline(args.time_limit)
    root = Path(tempfile.mkdtemp(prefix="taskapp-cluster-"))
    started = time.monotonic()
    cluster = Cluster(root, args.quick)
    ok = False
    try:
        net.build()
        ok = run(cluster, Timings(args.quick))
    finally:
        signal.alarm(0)
        cluster.shutdown()
        net.teardown()
        if not ok:
            print_log_tails(root / "logs", ("beat", "worker1", "worker2"))
        if args.keep or not ok:
            print(f"kept {root} (each host's logs under it)")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'PASS' if ok else 'FAIL'} in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


def print_log_tails(logs: Path, names: tuple[str, ...], lines: int = 40) -> None:
    """The end of the periodic side's logs: what a failed CI run leaves to read."""
    for name in names:
        path = logs / f"{name}.log"
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            print(f"\n--- {path.name}, last {len(tail)} lines ---", *tail, sep="\n")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(cluster: Cluster, timing: Timings) -> bool:
    say("db: PostgreSQL and Redis")
    cluster.postgres_init()
    cluster.redis_start()
    say("api1: migrate (db upgrade, grant-app-role) as the owner; hooks")
    together(cluster.migrate, cluster.hooks)
    say("api1, api2, worker1, worker2, beat, edge (side by side); the first admin")
    together(
        lambda: cluster.flask("users", "create", ADMIN, "--role", "ADMIN", "--password", PASSWORD),
        lambda: cluster.api("api1"),
        lambda: cluster.api("api2"),
        lambda: cluster.worker("worker1"),
        lambda: cluster.worker("worker2"),
        cluster.beat,
        cluster.edge,
    )
    say("every host is up")
    cluster.supervise()

    load = Load(timing.clients)
    admin = setup_users_and_webhook(load)
    session_checks = {}
    seeder = OverdueSeeder(cluster)
    load.login_all()
    load.start()
    seeder.start()
    faults: list[Fault] = []
    try:
        time.sleep(timing.warmup)
        session_checks["login limit"] = login_limit_across_hosts()
        faults += inject_faults(cluster, timing)
        session_checks["logout"] = logout_across_hosts()
        time.sleep(timing.gap)
    finally:
        load.finish()
        seeder.stop.set()
        seeder.join(timeout=30)
    say(f"load stopped: {len(load.requests())} requests; draining")
    return reconcile(cluster, load, seeder.seeded, faults, session_checks, admin, timing.drain)


def together(*steps) -> None:
    """Run the steps side by side (booting hosts: imports take seconds each); the first
    error is raised here, in the main thread."""
    errors = []

    def step(function):
        try:
            function()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=step, args=(s,)) for s in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def restart_later(fault: Fault, delay: float, start) -> threading.Thread:
    """What `restart: unless-stopped` does: start the host again after ``delay``; the
    fault's window ends when it is ready. Runs beside the next faults."""

    def restart():
        time.sleep(delay)
        start()
        fault.end = time.monotonic()

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    return thread


def setup_users_and_webhook(load: Load) -> dict:
    with httpx.Client(base_url=EDGE, timeout=30) as http:
        token = http.post(
            "/api/auth/login/", json={"username": ADMIN, "password": PASSWORD}
        ).json()["access"]
        auth = {"Authorization": f"Bearer {token}"}
        for client in load.clients:
            answer = http.post(
                "/api/users/",
                json={"username": client.name, "password": PASSWORD, "role": "INTERN",
                      "email": f"{client.name}@example.com"},
                headers=auth,
            )  # fmt: skip
            answer.raise_for_status()
        hook = http.post("/api/webhooks/", json={"url": f"{HOOKS}/hook"}, headers=auth)
        hook.raise_for_status()
        httpx.post(f"{HOOKS}/_secret", content=hook.json()["secret"], timeout=5)
        return {"token": token, "webhook": hook.json()["id"]}


class OverdueSeeder(threading.Thread):
    """Every second, 5 tasks due yesterday appear (plain SQL, as an import would write
    them): the sweeps, wherever and whenever they run, must mark each exactly once."""

    def __init__(self, cluster: Cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stop = threading.Event()
        self.seeded = 0
        self.batch = 0

    def run(self) -> None:
        while not self.stop.wait(1):
            try:
                with self.cluster.pg_connect() as conn:
                    uid = conn.execute(
                        "SELECT id FROM user_account WHERE username = %s", (ADMIN,)
                    ).fetchone()[0]
                    self.batch += 1
                    conn.execute(
                        "INSERT INTO task (title, description, status, priority, due_date, "
                        "assigned_to_id, created_by_id, created_at, updated_at, completed_at, "
                        "version) SELECT 'overdue-' || %(b)s || '-' || g, '', 'PENDING', 2, "
                        "current_date - 1, %(u)s, %(u)s, now(), now(), NULL, 1 "
                        "FROM generate_series(1, 5) g",
                        {"b": self.batch, "u": uid},
                    )
                    self.seeded += 5
            except Exception:  # the database is down for a moment: next second
                continue


def api_call(host: str, method: str, path: str, **kwargs) -> httpx.Response:
    """Straight to one app server, as if from the edge's side (same Host)."""
    headers = {"Host": net.address("edge"), **kwargs.pop("headers", {})}
    url = f"http://{net.address(host)}:8000{path}"
    return httpx.request(method, url, headers=headers, timeout=20, **kwargs)


def login_limit_across_hosts() -> dict:
    """Failed logins for one user alternate between api1 and api2: the 6th and 7th are
    refused (429) on either host, because the limit of 5 lives in the shared Redis."""
    wrong = {"username": ADMIN, "password": "not-the-password"}
    statuses = [
        api_call(("api1", "api2")[n % 2], "POST", "/api/auth/login/", json=wrong).status_code
        for n in range(7)
    ]
    ok = statuses == [401] * 5 + [429, 429]
    say(f"login limit across api1/api2: {statuses}")
    return {"ok": ok, "figures": f"api1/api2 alternating: {statuses}"}


def logout_across_hosts() -> dict:
    """Log in on api1, log out on api2, then the access token on api1: 401."""
    pair = api_call(
        "api1", "POST", "/api/auth/login/", json={"username": "client0", "password": PASSWORD}
    ).json()
    auth = {"Authorization": f"Bearer {pair['access']}"}
    before = api_call("api1", "GET", "/api/auth/me/", headers=auth).status_code
    out = api_call(
        "api2", "POST", "/api/auth/logout/", headers=auth, json={"refresh": pair["refresh"]}
    ).status_code
    after = [api_call(h, "GET", "/api/auth/me/", headers=auth).status_code for h in HOSTS]
    ok = before == 200 and out == 204 and after == [401, 401]
    say(f"logout on api2: me before {before}, logout {out}, me after (api1, api2) {after}")
    return {"ok": ok, "figures": f"me {before}; logout on api2 {out}; me on api1, api2 {after}"}


def inject_faults(cluster: Cluster, timing: Timings) -> list[Fault]:
    faults = []

    def window(name: str):
        fault = Fault(name, time.monotonic())
        faults.append(fault)
        say(f"fault: {name}")
        return fault

    restarts = []
    time.sleep(timing.gap)
    fault = window("api1 SIGKILL mid-burst")
    cluster.kill("api1")
    restarts.append(restart_later(fault, timing.restart_after, lambda: cluster.start_host("api1")))

    time.sleep(timing.gap)
    in_flight = wait_for_delivery_from("worker1", 30)
    fault = window("worker1 SIGKILL mid-delivery")
    fault.note = "a delivery was in flight" if in_flight else "no delivery caught in flight"
    cluster.kill("worker1")
    restarts.append(
        restart_later(fault, timing.restart_after, lambda: cluster.start_host("worker1"))
    )

    time.sleep(timing.gap)
    fault = window(f"worker2 link down {timing.link_down} s")
    net.link("worker2", up=False)
    time.sleep(timing.link_down)
    net.link("worker2", up=True)
    fault.end = time.monotonic()

    time.sleep(timing.gap)
    fault = window("PostgreSQL restart")
    cluster.postgres_stop("fast")
    cluster.postgres_start()
    fault.end = time.monotonic()

    time.sleep(timing.gap)
    fault = window(f"Redis stopped {timing.redis_down} s")
    cluster.redis_stop()
    time.sleep(timing.redis_down)
    cluster.redis_start()
    fault.end = time.monotonic()

    time.sleep(timing.gap)
    fault = window("beat SIGKILL and restart")
    cluster.kill("beat")
    restarts.append(restart_later(fault, timing.restart_after, lambda: cluster.start_host("beat")))
    for thread in restarts:
        thread.join(timeout=120)
    return faults


def wait_for_delivery_from(host: str, timeout: float) -> bool:
    """Until the receiver holds a request from ``host`` open (a delivery in flight)."""
    try:
        return bool(
            wait_until(
                lambda: net.address(host) in httpx.get(f"{HOOKS}/_in_flight", timeout=2).json(),
                timeout,
                f"a delivery from {host}",
                interval=0.02,
            )
        )
    except TimeoutError:
        return False


if __name__ == "__main__":
    sys.exit(main())
