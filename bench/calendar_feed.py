"""Calendar feed: time to the full body of a 10,000-task feed, and to a 304; bench/README.md,
"Calendar feed"."""

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask_migrate import upgrade

from bench import common
from bench.common import FAST_HASHING, JWT_SECRET, PASSWORD, login
from taskapp import create_app
from taskapp.extensions import db
from taskapp.models import Role
from taskapp.tasks.models import Priority, Task
from taskapp.users import service as users
from taskapp.users.passwords import PasswordHashing

PG_DB = "taskapp_bench_calendar"
CONFIG = {
    "TESTING": True,
    "JWT_SECRET_KEY": JWT_SECRET,
    **FAST_HASHING,
    "RATELIMIT_STORAGE_URI": "memory://",
    "CELERY": {"broker_url": "memory://", "task_ignore_result": True},
}


def seed(app, n_tasks: int) -> None:
    with app.app_context():
        upgrade()
        hashing = PasswordHashing.of(app)
        owner = users.create_user(
            db.session, "owner", PASSWORD, Role.INTERN, "o@x.org", hashing=hashing
        )
        db.session.commit()
        now = datetime.now(UTC)
        rows = [
            {
                "title": f"Task number {n} with a realistic title",
                "description": "Some notes about the task, a line or two.\nSecond line.",
                "status": "PENDING",
                "priority": list(Priority)[n % 3],
                "due_date": date(2026, 1, 1) + timedelta(days=n % 365),
                "assigned_to_id": owner.id,
                "created_by_id": owner.id,
                "created_at": now,
                "updated_at": now,
                "version": 1,
                "recurrence": "FREQ=WEEKLY;BYDAY=MO" if n % 10 == 0 else None,
                "occurrence": 1 if n % 10 == 0 else None,
            }
            for n in range(n_tasks)
        ]
        db.session.execute(sa.insert(Task.__table__), rows)
        db.session.commit()


def feed_path(app) -> str:
    """The owner's feed URL (it carries its own secret), as the app hands it out."""
    headers = {"Authorization": f"Bearer {login(app.test_client(), 'owner')}"}
    url = app.test_client().post("/api/auth/calendar-feed/", headers=headers).get_json()["url"]
    return url.removeprefix("http://localhost")


def measure(database_url: str, path: str, rounds: int, form: str) -> dict:
    timings = {"cold": [], "warm": [], "not_modified": [], "cold_cpu": [], "warm_cpu": []}
    for _ in range(rounds):
        app = create_app({**CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
        client = app.test_client()
        for kind in ("cold", "warm"):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(path)
            body = response.get_data()
            timings[kind].append(time.perf_counter() - start)
            timings[f"{kind}_cpu"].append(time.process_time() - start_cpu)
        start = time.perf_counter()
        assert (
            client.get(path, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
        )
        timings["not_modified"].append(time.perf_counter() - start)
        dispose(app)
    result = {kind: statistics.median(values) for kind, values in timings.items()}
    component = b"BEGIN:VEVENT" if form == "events" else b"BEGIN:VTODO"
    return {**result, "bytes": len(body), "components": body.count(component), "form": form}


def dispose(app) -> None:
    with app.app_context():
        db.engine.dispose()


def report(name: str, result: dict) -> None:
    n = result["components"]
    kind = "VEVENTs" if result["form"] == "events" else "VTODOs"
    parts = [f"{name:10} {n} {kind}, {result['bytes'] / 1e6:.1f} MB:"]
    for kind in ("cold", "warm"):
        took = result[kind]
        per_task = took / n * 1e6
        cpu = result[f"{kind}_cpu"]
        parts.append(
            f"{kind} {took * 1000:.0f} ms ({per_task:.0f} us/task, {took:.2f}x 1 s;"
            f" CPU {cpu * 1000:.0f} ms);"
        )
    parts.append(f"304 {result['not_modified'] * 1000:.1f} ms")
    print(" ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--as", dest="form", choices=("todos", "events"), default="todos")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"sqlite": f"sqlite:///{Path(tmp) / 'feed.sqlite'}"}
        pg = common.scratch_database(PG_DB)
        if pg:
            targets["postgresql"] = pg
        for name, url in targets.items():
            app = create_app({**CONFIG, "SQLALCHEMY_DATABASE_URI": url})
            seed(app, args.tasks)
            path = feed_path(app) + ("?as=events" if args.form == "events" else "")
            dispose(app)
            report(name, measure(url, path, args.rounds, args.form))
    if pg:
        with common.connect(common.ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
