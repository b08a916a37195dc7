"""Measured estimates for the proposed taskapp changes. This does NOT change taskapp: each
stage builds the app as it is and applies the proposals by monkeypatching in this process
(gunicorn imports ``bench.experiments:app`` with ``BENCH_STAGE``), then drives the lists
through the same gunicorn configuration and wrk as the benchmark.

Stages are cumulative:
  0  the app as it is
  1  no pool pre-ping (config ``SQLALCHEMY_ENGINE_OPTIONS``): one round trip less
  2  GET requests run in autocommit (as Django does by default): no BEGIN and ROLLBACK
  3  the token check reads only the columns it needs, through Core, not an ORM entity
  4  the list runs its two queries through Core (task columns + the assignee's username,
     no ORM entities) and serialises the rows with plain code instead of marshmallow
  5  the count comes from a per-(assignee, status, priority) counter table when the
     filters are only status / priority / assigned_to (built here from the data; in
     taskapp it would be kept by a trigger, see README) -- the ADMIN count

The prototypes cover the GET list only (POST and other paths are not patched for
correctness and are not driven here).

    python -m bench.experiments [--stages 0,1,2,3,4,5] [--duration 10] [--rounds 2]
        [--pgoptions "-c max_parallel_workers_per_gather=0"]
"""

import argparse
import json
import os
import time
from types import SimpleNamespace

from bench.common import RESULTS_DIR, app_env, connect, table, use_app_env

STAGE = int(os.environ.get("BENCH_STAGE", "0"))
COUNTER_TABLE = "bench_task_counter"
COUNTER_FILTERS = {"status", "priority", "assigned_to"}
NON_FILTER_ARGS = {"page", "page_size", "ordering"}


def build_app(stage: int):
    use_app_env()
    from taskapp import create_app

    overrides = {}
    if stage >= 1:
        overrides["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": False}
    app = create_app(overrides)
    if stage >= 2:
        _autocommit_reads(app)
    if stage >= 3:
        _core_token_check()
    if stage >= 4:
        _lean_list(app, counter=stage >= 5)
    return app


def _autocommit_reads(app) -> None:
    from flask import request

    from taskapp.extensions import db

    @app.before_request
    def autocommit_for_reads():
        if request.method in ("GET", "HEAD"):
            db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def _core_token_check() -> None:
    from sqlalchemy import exists, select

    from taskapp.auth import tokens
    from taskapp.extensions import db
    from taskapp.models import RevokedToken, Role, User

    u = User.__table__.c
    revoked = RevokedToken.__table__.c

    def load_token_user(payload: dict):
        is_revoked = exists().where(revoked.jti == payload["jti"])
        query = select(u.id, u.username, u.role, u.is_active, u.token_version, is_revoked).where(
            u.id == int(payload["sub"])
        )
        row = db.session.connection().execute(query).first()
        if row is None:
            return None
        if row[5] or not row.is_active or row.token_version != payload.get("ver"):
            return None
        return SimpleNamespace(
            id=row.id,
            username=row.username,
            role=Role(row.role),
            is_active=row.is_active,
            token_version=row.token_version,
        )

    tokens.load_token_user = load_token_user


def _iso(value):
    return None if value is None else value.isoformat()


def _lean_list(app, counter: bool) -> None:
    import marshmallow as ma
    from flask import abort, request
    from flask_jwt_extended import current_user, verify_jwt_in_request
    from sqlalchemy import func, select

    from taskapp.extensions import db
    from taskapp.models import Priority, Task, User
    from taskapp.pagination import INVALID_PAGE, MAX_PAGE_SIZE, _page_url
    from taskapp.tasks.queries import apply_filters, apply_ordering, visible_tasks
    from taskapp.tasks.schemas import TaskQueryArgsSchema

    schema = TaskQueryArgsSchema()
    t = Task.__table__.c
    columns = [
        t.id,
        t.title,
        t.description,
        t.status,
        t.priority,
        t.due_date,
        t.assigned_to_id,
        t.created_by_id,
        t.created_at,
        t.updated_at,
        t.completed_at,
    ]
    original = app.view_functions["tasks.Tasks"]
    counts = None
    if counter:
        from sqlalchemy import Column, Integer, MetaData, SmallInteger, String, Table

        counts = Table(
            COUNTER_TABLE,
            MetaData(),
            Column("assigned_to_id", Integer),
            Column("status", String),
            Column("priority", SmallInteger),
            Column("n", Integer),
        )

    def count_of(filtered, args, user):
        if counts is not None and set(args) - NON_FILTER_ARGS <= COUNTER_FILTERS:
            query = select(func.coalesce(func.sum(counts.c.n), 0))
            if user.role != "ADMIN":
                query = query.where(counts.c.assigned_to_id == user.id)
            if "assigned_to" in args:
                query = query.where(counts.c.assigned_to_id == args["assigned_to"])
            if "status" in args:
                query = query.where(counts.c.status.in_([s.value for s in args["status"]]))
            if "priority" in args:
                query = query.where(counts.c.priority.in_([p.rank for p in args["priority"]]))
            return int(db.session.connection().execute(query).scalar_one())
        query = filtered.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
        return db.session.connection().execute(query).scalar_one()

    def lean_get():
        verify_jwt_in_request()
        try:
            args = schema.load(request.args.to_dict())
        except ma.ValidationError as error:
            return {k: v for k, v in error.messages.items()}, 400
        user = current_user
        filtered = apply_filters(visible_tasks(user), args)
        count = count_of(filtered, args, user)
        page, size = args["page"], min(args["page_size"], MAX_PAGE_SIZE)
        if page > 1 and (page - 1) * size >= count:
            abort(404, INVALID_PAGE)
        query = apply_ordering(filtered, args["ordering"]).with_only_columns(
            *columns, User.username
        )
        query = (
            query.join(User, User.id == Task.assigned_to_id).limit(size).offset((page - 1) * size)
        )
        results = [
            {
                "id": r[0],
                "title": r[1],
                "description": r[2],
                "status": r[3].value,
                "priority": Priority(r[4]).value,
                "due_date": _iso(r[5]),
                "assigned_to": r[6],
                "assigned_to_username": r[11],
                "created_by": r[7],
                "created_at": _iso(r[8]),
                "updated_at": _iso(r[9]),
                "completed_at": _iso(r[10]),
            }
            for r in db.session.connection().execute(query)
        ]
        return {
            "count": count,
            "next": _page_url(page + 1) if page * size < count else None,
            "previous": _page_url(page - 1) if page > 1 else None,
            "results": results,
        }

    def view(*args, **kwargs):
        if request.method == "GET":
            return lean_get()
        return original(*args, **kwargs)

    app.view_functions["tasks.Tasks"] = view


def make_counter_table() -> float:
    """The counter table the stage-5 prototype reads, built from the data; returns how
    long a COUNT of the full table takes by comparison (for the README)."""
    with connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {COUNTER_TABLE}")
        conn.execute(
            f"CREATE TABLE {COUNTER_TABLE} AS SELECT assigned_to_id, status, priority, "
            "count(*)::int AS n FROM task GROUP BY 1, 2, 3"
        )
        conn.execute(f"CREATE UNIQUE INDEX ON {COUNTER_TABLE} (assigned_to_id, status, priority)")
        conn.commit()
    with connect(autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {COUNTER_TABLE}")
    return 0.0


def drop_counter_table() -> None:
    with connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {COUNTER_TABLE}")
        conn.commit()


def trigger_cost(n: int = 3000) -> dict:
    """What keeping the counter costs a write: n single-row INSERTs (each its own
    transaction) into task with and without an AFTER INSERT/UPDATE/DELETE trigger that
    upserts the counter; rolled back / cleaned up afterwards."""
    function = f"""
    CREATE OR REPLACE FUNCTION bench_task_counter_keep() RETURNS trigger AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE {COUNTER_TABLE} SET n = n - 1 WHERE assigned_to_id = OLD.assigned_to_id
          AND status = OLD.status AND priority = OLD.priority;
      END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO {COUNTER_TABLE} VALUES (NEW.assigned_to_id, NEW.status, NEW.priority, 1)
          ON CONFLICT (assigned_to_id, status, priority) DO UPDATE SET n = {COUNTER_TABLE}.n + 1;
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql;
    """
    insert = (
        "INSERT INTO task (title, description, status, priority, due_date, assigned_to_id, "
        "created_by_id, created_at, updated_at, version) VALUES ('t', '', 'PENDING', 2, NULL, "
        "%s, %s, now(), now(), 1)"
    )
    out: dict[str, list[float]] = {"without trigger": [], "with trigger": []}
    with connect(autocommit=True) as conn:
        max_id = conn.execute("SELECT max(id) FROM task").fetchone()[0]
        conn.execute(function)
        for i in range(n // 3):  # warm-up
            conn.execute(insert, [11 + i % 190, 11 + i % 190])
        for label in ("without trigger", "with trigger") * 3:  # alternate; keep the best
            if label == "with trigger":
                conn.execute(
                    "CREATE TRIGGER bench_task_counter AFTER INSERT OR UPDATE OR DELETE ON task "
                    "FOR EACH ROW EXECUTE FUNCTION bench_task_counter_keep()"
                )
            start = time.perf_counter()
            for i in range(n):
                conn.execute(insert, [11 + i % 190, 11 + i % 190])
            out[label].append((time.perf_counter() - start) / n * 1000)
            conn.execute("DROP TRIGGER IF EXISTS bench_task_counter ON task")
        conn.execute("DROP FUNCTION bench_task_counter_keep()")
        conn.execute("DELETE FROM task WHERE id > %s", [max_id])
        conn.execute("VACUUM ANALYZE task")
    return {k: round(min(v), 3) for k, v in out.items()}


def run(stages, duration: float, rounds: int = 2, pgoptions: str = "") -> dict:
    from bench.http_bench import LIST_PATH, Gunicorn, bench_users, login, scenario

    users = bench_users()
    results = {}
    if 5 in stages:
        make_counter_table()
    try:
        for number in range(rounds):
            for stage in stages:
                env = app_env(BENCH_STAGE=str(stage))
                if pgoptions:  # libpq reads it: settings for every connection of the app
                    env["PGOPTIONS"] = pgoptions
                with Gunicorn("bench.experiments:app", env, f"stage{stage}") as server:
                    server.wait_ready("/healthz")
                    admin, intern = (
                        login(server.base, users["admin"]),
                        login(server.base, users["intern"]),
                    )
                    url = server.base + LIST_PATH
                    print(f"round {number + 1}, stage {stage}", flush=True)
                    got = {
                        "intern_list": scenario(
                            "INTERN list", url, duration, 8, 2, BENCH_TOKEN=intern
                        ),
                        "admin_list": scenario(
                            "ADMIN list", url, duration, 8, 2, BENCH_TOKEN=admin
                        ),
                    }
                best = results.setdefault(stage, got)
                for key, value in got.items():  # best round per scenario
                    if value["rps"] > best[key]["rps"]:
                        best[key] = value
        if 5 in stages:
            results["trigger_ms_per_insert"] = trigger_cost()
            print("counter trigger, ms per single-row INSERT:", results["trigger_ms_per_insert"])
    finally:
        drop_counter_table()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stages", default="0,1,2,3,4,5")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--pgoptions", default="", help='e.g. "-c max_parallel_workers_per_gather=0"'
    )
    args = parser.parse_args()
    stages = [int(s) for s in args.stages.split(",")]
    results = run(stages, args.duration, args.rounds, args.pgoptions)
    rows = [
        [
            stage,
            f"{r['intern_list']['rps']:.0f}",
            f"{r['intern_list']['p99_ms']:.1f}",
            f"{r['admin_list']['rps']:.0f}",
            f"{r['admin_list']['p99_ms']:.1f}",
            f"{max(r['intern_list']['background_cpu'], r['admin_list']['background_cpu']):.0%}",
        ]
        for stage, r in results.items()
        if isinstance(stage, int)
    ]
    print(
        table(
            rows,
            [
                "stage",
                "INTERN req/s",
                "INTERN p99 ms",
                "ADMIN req/s",
                "ADMIN p99 ms",
                "busy before",
            ],
        )
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "experiments.json").write_text(json.dumps(results, indent=1, default=str))


if os.environ.get("BENCH_STAGE") is not None and __name__ != "__main__":
    app = build_app(STAGE)

if __name__ == "__main__":
    main()
