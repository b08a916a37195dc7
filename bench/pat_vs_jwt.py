"""A request with a personal access token against the same request with a JWT, in one
run: time per request (ratio) and SQL round trips of each; also the token with its rate
limit's count skipped (``pat-unlimited``), to show what the limit costs, and each check
alone, without the view.

In process (Flask test client), so that the difference between the two checks is not
drowned by HTTP: the token check is what differs, everything else is the same view.
The kinds are interleaved in rounds; the ratio is given between the best rounds and as
the median of each round's own ratio (both kinds ran within a second or two of each
other, so a round's ratio is less exposed to the machine's drift than its times).
Round trips are counted with SQLAlchemy events: every statement, plus the
BEGIN/COMMIT/ROLLBACK that frame them.

    python -m bench.pat_vs_jwt                         # SQLite file in a temp dir
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/taskapp_bench_pat \\
        python -m bench.pat_vs_jwt                      # an existing, empty database
    ROUNDS=7 REQUESTS=400 python -m bench.pat_vs_jwt
    RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/10 python -m bench.pat_vs_jwt   # limit in Redis

The database is migrated (``flask db upgrade``) and given one user, a few tasks and one
token; nothing else is touched: the databases of the tests and of the main benchmark
(``test``, ``taskapp``, ``taskapp_test``, ``taskapp_bench``, ``taskapp_bench_smoke``) are
refused, the Celery broker is in memory (no file written in ``instance/``), and in Redis
only the token's counter key is written.
"""

import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager

from sqlalchemy import event

URL = os.environ.get("BENCH_URL", "/api/tasks/stats/")
ROUNDS = int(os.environ.get("ROUNDS", "5"))
REQUESTS = int(os.environ.get("REQUESTS", "300"))
PASSWORD = "bench password long enough"


REFUSED_DATABASES = {"test", "taskapp", "taskapp_test", "taskapp_bench", "taskapp_bench_smoke"}


def database_url() -> str:
    from sqlalchemy.engine import make_url

    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/pat.sqlite"
    if make_url(url).get_backend_name() != "sqlite" and make_url(url).database in REFUSED_DATABASES:
        sys.exit(f"refusing {make_url(url).database}: use a database of this benchmark's own")
    return url


def make_app():
    from flask_migrate import upgrade

    from taskapp import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url(),
            "CELERY": {"broker_url": "memory://", "task_ignore_result": True},
            "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
            "PAT_RATE_LIMIT": "1000000 per minute",
            "PASSWORD_HASH_TIME_COST": 1,
            "PASSWORD_HASH_MEMORY_KIB": 8,
            "PASSWORD_HASH_PARALLELISM": 1,
        }
    )
    with app.app_context():
        upgrade()
    return app


def credentials(app) -> dict[str, dict]:
    from taskapp.extensions import db
    from taskapp.users import service
    from taskapp.users.passwords import PasswordHashing

    with app.app_context():
        if service.find_by_username(db.session, "pat-bench") is None:
            service.create_user(db.session, "pat-bench", PASSWORD, hashing=PasswordHashing.of(app))
            db.session.commit()
    client = app.test_client()
    login = client.post("/api/auth/login/", json={"username": "pat-bench", "password": PASSWORD})
    jwt = {"Authorization": f"Bearer {login.get_json()['access']}"}
    for n in range(5):
        client.post("/api/tasks/", json={"title": f"bench {n}"}, headers=jwt)
    made = client.post(
        "/api/auth/tokens/", json={"name": "bench", "scopes": ["tasks:read"]}, headers=jwt
    )
    pat = {"Authorization": f"Bearer {made.get_json()['token']}"}
    return {"jwt": jwt, "pat": pat}


@contextmanager
def counting(engine):
    """Count statements and transaction ends (each a round trip to the server)."""
    counts = {"statements": 0, "commits_rollbacks": 0}

    def statement(*_args):
        counts["statements"] += 1

    def ended(*_args):
        counts["commits_rollbacks"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", ended)
    event.listen(engine, "rollback", ended)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", ended)
        event.remove(engine, "rollback", ended)


@contextmanager
def without_rate_limit(enabled: bool):
    """For the ``pat-unlimited`` rows only: the same request with the per-token rate
    limit's count skipped, to show what the limit itself costs."""
    from taskapp.web import permissions

    original = permissions.check_personal_token
    if enabled:
        permissions.check_personal_token = lambda _token_id: None
    try:
        yield
    finally:
        permissions.check_personal_token = original


KINDS = ("jwt", "pat", "pat-unlimited")


def time_round(client, headers: dict) -> float:
    """Seconds per request over ``REQUESTS`` requests."""
    start = time.perf_counter()
    for _ in range(REQUESTS):
        response = client.get(URL, headers=headers)
        if response.status_code != 200:
            sys.exit(f"unexpected {response.status_code}: {response.get_data(as_text=True)}")
    return (time.perf_counter() - start) / REQUESTS


def time_check(app, headers: dict) -> float:
    """Seconds per token check alone (``web.permissions.authenticate``: the JWT decode
    and its query, or the token's HMAC, its query and, for ``pat``, its rate-limit count),
    without the view."""
    from taskapp.extensions import db
    from taskapp.web.permissions import authenticate

    with app.test_request_context(URL, headers=headers):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            authenticate()
            db.session.rollback()
        return (time.perf_counter() - start) / REQUESTS


def time_count(app, headers: dict) -> float:
    """Seconds per rate-limit count alone (``web.ratelimit.check_personal_token``)."""
    from taskapp.extensions import db
    from taskapp.web import ratelimit
    from taskapp.web.permissions import authenticate, get_jwt

    with app.test_request_context(URL, headers=headers):
        authenticate()
        token_id = get_jwt()["pat"]
        db.session.rollback()
        start = time.perf_counter()
        for _ in range(REQUESTS):
            ratelimit.check_personal_token(token_id)
        return (time.perf_counter() - start) / REQUESTS


def main() -> None:
    app = make_app()
    headers = credentials(app)
    headers["pat-unlimited"] = headers["pat"]
    client = app.test_client()
    with app.app_context():
        from taskapp.extensions import db

        engine = db.engine
    for kind in ("jwt", "pat", "jwt", "pat"):  # warm up (and stamp last_used_at)
        time_round(client, headers[kind])
    trips = {}
    for kind in ("jwt", "pat"):
        with counting(engine) as counts:
            client.get(URL, headers=headers[kind])
        trips[kind] = counts
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    checks: dict[str, list[float]] = {kind: [] for kind in KINDS}
    counts: list[float] = []
    for _ in range(ROUNDS):
        for kind in KINDS:
            with without_rate_limit(kind == "pat-unlimited"):
                times[kind].append(time_round(client, headers[kind]))
                checks[kind].append(time_check(app, headers[kind]))
        counts.append(time_count(app, headers["pat"]))
    best = {kind: min(values) for kind, values in times.items()}
    best_check = {kind: min(values) for kind, values in checks.items()}
    storage = app.config["RATELIMIT_STORAGE_URI"].split("://")[0]
    print(
        f"database: {engine.dialect.name}; rate limit storage: {storage}; GET {URL}; "
        f"{ROUNDS} rounds x {REQUESTS} requests"
    )
    for kind in KINDS:
        rounds = ", ".join(f"{t * 1e3:.3f}" for t in times[kind])
        print(
            f"{kind}: best {best[kind] * 1e3:.3f} ms/request "
            f"(median {statistics.median(times[kind]) * 1e3:.3f}; rounds {rounds}); "
            f"{trips[kind[:3]]['statements']} statements + "
            f"{trips[kind[:3]]['commits_rollbacks']} commit/rollback per request; "
            f"check alone {best_check[kind] * 1e3:.3f} ms"
        )
    print(
        f"rate-limit count alone: best {min(counts) * 1e3:.3f} ms "
        f"(median {statistics.median(counts) * 1e3:.3f})"
    )
    for kind in ("pat", "pat-unlimited"):
        paired = statistics.median(t / j for t, j in zip(times[kind], times["jwt"], strict=True))
        print(
            f"{kind}/jwt ratio: whole request {best[kind] / best['jwt']:.3f} "
            f"(median of the rounds' ratios {paired:.3f}), "
            f"check alone {best_check[kind] / best_check['jwt']:.3f}"
        )


if __name__ == "__main__":
    main()
