"""Extra fault (opt-in: ``--only frozen``): Redis hung rather than stopped.

``SIGSTOP`` on redis-server: the kernel still accepts TCP connections on its port, but
nothing ever answers. This is what a Redis stuck on a slow disk, a swap storm or a
network partition that drops packets looks like to a client; unlike a stopped Redis
(connection refused at once), only socket timeouts save the caller.

Checks: /healthz answers within 3 s reporting the broker down; login answers within
3 s; an authenticated read is unaffected; no gunicorn worker is killed by its timeout.
"""

import signal
import time

from reliability.faults.checks import ADMIN, PASSWORD, Client, Report
from reliability.infra import Stack

NAME = "redis-frozen"
LIMIT_SECONDS = 3.0


def run(report: Report, *, pg_port: int, redis_port: int, http_port: int, keep: bool) -> None:
    with Stack("faults-frozen", pg_port=pg_port, redis_port=redis_port, keep=keep) as stack:
        stack.migrate()
        stack.create_user(ADMIN, PASSWORD, "ADMIN")
        gunicorn = stack.gunicorn(http_port, workers=2)
        client = Client(f"http://127.0.0.1:{http_port}", timeout=45)
        try:
            token = client.login().body["access"]
            client.login("nobody", "wrong-password")  # the limiter has a Redis connection now
            stack.redis.proc.signal_group(signal.SIGSTOP)
            report.info(NAME, "redis-server SIGSTOPped (port open, no answers)")
            try:
                _check_while_frozen(report, client, token)
            finally:
                stack.redis.proc.signal_group(signal.SIGCONT)
            time.sleep(0.5)
            timeouts = gunicorn.log_text().count("WORKER TIMEOUT")
            report.check(
                NAME,
                "no gunicorn worker killed by its timeout",
                timeouts == 0,
                f"{timeouts} WORKER TIMEOUT line(s) in the gunicorn log",
            )
        finally:
            client.close()


def _check_while_frozen(report: Report, client: Client, token: str) -> None:
    health = client.call("GET", "/healthz")
    report.check(
        NAME,
        f"/healthz answers within {LIMIT_SECONDS:.0f} s and reports the broker down",
        health.status == 200
        and health.get("broker") == "unreachable"
        and health.elapsed < LIMIT_SECONDS,
        f"{health.status or health.error} "
        f"{health.body if health.is_json else '(not JSON)'} "
        f"after {health.elapsed:.1f} s",
    )
    me = client.call("GET", "/api/auth/me/", token)
    report.check(
        NAME,
        "an authenticated read is unaffected",
        me.status == 200,
        f"{me.status} in {me.elapsed:.2f} s",
    )
    logins = [client.login() for _ in range(3)]
    report.check(
        NAME,
        f"login answers within {LIMIT_SECONDS:.0f} s",
        all(a.status == 200 and a.elapsed < LIMIT_SECONDS for a in logins),
        ", ".join(f"{a.status or a.error} in {a.elapsed:.1f} s" for a in logins),
    )
