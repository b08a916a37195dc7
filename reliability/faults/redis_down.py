"""Fault: Redis stopped while the API runs.

gunicorn (2 sync workers) on PostgreSQL + Redis; once everything has been used with Redis
up (login, a failed login that the limiter stores in Redis, the broker check), Redis is
shut down. Then, with Redis gone:

- /healthz answers 200 quickly, database ok, broker "unreachable";
- login, refresh (rotation), task create/read/list/patch/stats/delete all work;
- logout revokes at once (the old access and refresh tokens answer 401): revocation
  lives in PostgreSQL, not Redis;
- the login rate limiter falls back to per-process memory, logs a warning, and still
  throttles (429 after the 5-per-minute budget of each worker process);
- no answer is a 5xx, every answer is JSON.

Finally Redis comes back and /healthz reports the broker ok again.
"""

import signal
import time

from reliability.faults.checks import ADMIN, PASSWORD, Client, Report, codes, fmt_codes
from reliability.infra import Stack, wait_until

NAME = "redis-down"
FALLBACK_WARNING = "Rate limit storage unreachable - falling back to in-memory storage"
WORKERS = 2


def run(report: Report, *, pg_port: int, redis_port: int, http_port: int, keep: bool) -> None:
    with Stack("faults-redis", pg_port=pg_port, redis_port=redis_port, keep=keep) as stack:
        stack.migrate()
        stack.create_user(ADMIN, PASSWORD, "ADMIN")
        gunicorn = stack.gunicorn(http_port, workers=WORKERS)
        client = Client(f"http://127.0.0.1:{http_port}")
        try:
            _scenario(report, stack, client, gunicorn)
        finally:
            client.close()


class Recording:
    """Calls through ``client``, every answer kept for the final no-5xx check."""

    def __init__(self, client: Client):
        self.client = client
        self.answers: list = []

    def __call__(self, *args, **kwargs):
        answer = self.client.call(*args, **kwargs)
        self.answers.append(answer)
        return answer


def _scenario(report: Report, stack: Stack, client: Client, gunicorn) -> None:
    _check_baseline(report, stack, client)
    stack.redis.stop(signal.SIGTERM)
    report.info(NAME, f"Redis on port {stack.redis.port} stopped (SIGTERM); port closed")
    call = Recording(client)
    _check_health_down(report, call)
    access, refresh = _check_logins(report, call)
    _check_crud(report, call, access)
    _check_refresh_and_logout(report, call, refresh)
    _check_limiter(report, call)
    _check_fallback_logged(report, gunicorn)
    server_errors = [a for a in call.answers if a.status == 0 or a.status >= 500]
    report.check(
        NAME,
        "no 5xx and no dropped connection while Redis is down; every body JSON",
        not server_errors and all(a.is_json or a.status == 204 for a in call.answers),
        f"{len(call.answers)} requests: {fmt_codes(codes(call.answers))}",
    )
    _check_redis_back(report, stack, client)


def _check_baseline(report: Report, stack: Stack, client: Client) -> None:
    """With Redis up: the broker is reported ok, the limiter counts in Redis."""
    health = client.call("GET", "/healthz")
    report.check(
        NAME,
        "baseline: /healthz with Redis up",
        health.status == 200 and health.get("broker") == "ok",
        f"{health.status} {health.body}",
    )
    bad = client.login("nobody-before", "wrong-password")
    limiter_keys = [k.decode() for k in stack.redis.client().keys("*")]
    report.check(
        NAME,
        "baseline: the login limiter stores its counters in Redis",
        bad.status == 401 and any("login:nobody-before" in k for k in limiter_keys),
        f"failed login {bad.status}; Redis keys: {limiter_keys}",
    )


def _check_health_down(report: Report, call: Recording) -> None:
    health = call("GET", "/healthz")
    report.check(
        NAME,
        "/healthz reports the broker down, database ok, HTTP 200",
        health.status == 200
        and health.body == {"status": "ok", "database": "ok", "broker": "unreachable"},
        f"{health.status} {health.body} in {health.elapsed * 1000:.0f} ms",
    )
    report.check(
        NAME,
        "/healthz stays fast with the broker down",
        health.elapsed < 3,
        f"{health.elapsed:.2f} s (limit 3 s)",
    )


def _check_logins(report: Report, call: Recording) -> tuple[str, str]:
    """Logins, at least one per worker (each process discovers the dead storage itself);
    the last one's access and refresh tokens."""
    logins = [
        call("POST", "/api/auth/login/", json={"username": ADMIN, "password": PASSWORD})
        for _ in range(WORKERS + 2)
    ]
    report.check(
        NAME,
        "login works",
        all(a.status == 200 and {"access", "refresh"} <= set(a.body) for a in logins),
        f"{len(logins)} logins: {fmt_codes(codes(logins))}; "
        f"max {max(a.elapsed for a in logins) * 1000:.0f} ms",
    )
    return logins[-1].body["access"], logins[-1].body["refresh"]


def _crud_steps(call: Recording, access: str) -> list[tuple]:
    """(kind, answer, expected status) for a task's whole life."""
    created = call(
        "POST", "/api/tasks/", access, json={"title": "while Redis is down", "priority": "HIGH"}
    )
    task_id = created.get("id") if created.status == 201 else None
    steps = [("create", created, 201)]
    if not task_id:
        return steps
    path = f"/api/tasks/{task_id}/"
    return [
        *steps,
        ("get", call("GET", path, access), 200),
        ("list", call("GET", "/api/tasks/?ordering=-priority", access), 200),
        ("patch", call("PATCH", path, access, json={"status": "IN_PROGRESS"}), 200),
        ("stats", call("GET", "/api/tasks/stats/", access), 200),
        ("logs", call("GET", f"/api/activity-logs/?task={task_id}", access), 200),
        ("delete", call("DELETE", path, access), 204),
        ("get deleted", call("GET", path, access), 404),
    ]


def _check_crud(report: Report, call: Recording, access: str) -> None:
    steps = _crud_steps(call, access)
    report.check(
        NAME,
        "task CRUD works",
        len(steps) == 8 and all(a.status == want for _, a, want in steps),
        ", ".join(f"{kind} {a.status}" for kind, a, _ in steps),
    )
    log_page = next((a for kind, a, _ in steps if kind == "logs"), None)
    if log_page is not None and log_page.status == 200:
        actions = [e["action"] for e in log_page.body["results"]]
        report.check(
            NAME,
            "audit entries written",
            sorted(actions) == ["CREATED", "STATUS_CHANGED"],
            f"{actions}",
        )


def _check_refresh_and_logout(report: Report, call: Recording, refresh: str) -> None:
    """Refresh with rotation, then logout: revocation is in PostgreSQL."""
    rotated = call("POST", "/api/auth/refresh/", json={"refresh": refresh})
    replay = call("POST", "/api/auth/refresh/", json={"refresh": refresh})
    report.check(
        NAME,
        "refresh rotates; the old refresh token is refused",
        rotated.status == 200 and replay.status == 401,
        f"refresh {rotated.status}, replay {replay.status}",
    )
    if rotated.status != 200:
        return
    access2, refresh2 = rotated.body["access"], rotated.body["refresh"]
    me_before = call("GET", "/api/auth/me/", access2)
    logout = call("POST", "/api/auth/logout/", access2, json={"refresh": refresh2})
    me_after = call("GET", "/api/auth/me/", access2)
    refresh_after = call("POST", "/api/auth/refresh/", json={"refresh": refresh2})
    report.check(
        NAME,
        "logout revokes access and refresh token at once",
        (me_before.status, logout.status, me_after.status, refresh_after.status)
        == (200, 204, 401, 401),
        f"me {me_before.status}, logout {logout.status}, me after {me_after.status}, "
        f"refresh after {refresh_after.status}",
    )


def _check_limiter(report: Report, call: Recording) -> None:
    """The limiter degrades to per-process memory and still throttles."""
    attempts = [
        call(
            "POST",
            "/api/auth/login/",
            json={"username": "nobody-during", "password": "wrong-password"},
        )
        for _ in range(5 * WORKERS + 4)
    ]
    statuses = [a.status for a in attempts]
    first_429 = statuses.index(429) + 1 if 429 in statuses else None
    report.check(
        NAME,
        "rate limiter degrades without failing requests and still throttles",
        set(statuses) <= {401, 429}
        and first_429 is not None
        and first_429 > 5
        and all(a.headers.get("retry-after") for a in attempts if a.status == 429),
        f"{len(attempts)} bad logins: {fmt_codes(codes(attempts))}; first 429 at attempt "
        f"{first_429} (in-memory limit: 5 per worker process x {WORKERS})",
    )


def _check_fallback_logged(report: Report, gunicorn) -> None:
    time.sleep(0.5)
    warnings = gunicorn.log_text().count(FALLBACK_WARNING)
    report.check(
        NAME,
        "the fallback is logged as a warning",
        warnings >= 1,
        f'"{FALLBACK_WARNING}" x{warnings} in the gunicorn log (once per worker process)',
    )
    traces = gunicorn.log_text().count("Traceback")
    report.info(NAME, f"gunicorn log: {traces} traceback(s) while Redis was down")


def _check_redis_back(report: Report, stack: Stack, client: Client) -> None:
    started = time.monotonic()
    stack.redis.start()
    recovered = wait_until(
        lambda: client.call("GET", "/healthz").get("broker") == "ok", 30, "broker ok"
    )
    login = client.login()
    report.check(
        NAME,
        "Redis back: /healthz broker ok again, login works",
        recovered and login.status == 200,
        f"broker ok {time.monotonic() - started:.1f} s after Redis restart; login {login.status}",
    )
