"""The sync feed at scale: an unchanged call with 1M tasks and 1M log entries; bench/README.md,
"Live changes"."""

import argparse
import statistics
import time

from bench.common import connect, ensure_database, latency_figures, use_database, verdict
from bench.seed import current_seed, seed

DATABASE = "taskapp_bench_live"
TARGET_MS = 5.0
HISTORY = """
INSERT INTO activity_log (id, task_id, task_title, action, changes, actor_id, source,
                          assignee_id, created_at, xid)
SELECT id, id, title, 'CREATED', '{}'::jsonb, created_by_id, 'api', assigned_to_id,
       created_at, -1 - id / 10
FROM task
"""
"""Ten entries per commit. The made-up transaction ids are negative: a real one
(pg_current_xact_id(), positive) must never join these entries to its own commit."""


def seed_history(conn) -> None:
    """One CREATED entry per task and its commits, unless the log already has them."""
    (entries, lowest) = conn.execute("SELECT count(*), min(xid) FROM activity_log").fetchone()
    (tasks,) = conn.execute("SELECT count(*) FROM task").fetchone()
    if entries >= tasks and lowest is not None and lowest < 0:
        return
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("ALTER TABLE activity_log DISABLE TRIGGER activity_log_no_truncate")
        conn.execute("TRUNCATE activity_log, commit_position")
        conn.execute("ALTER TABLE activity_log ENABLE TRIGGER activity_log_no_truncate")
        conn.execute(HISTORY)
        conn.execute(
            "INSERT INTO commit_position (xid)"
            " SELECT DISTINCT xid FROM activity_log ORDER BY xid DESC"
        )
        conn.execute("SELECT setval('activity_log_id_seq', (SELECT max(id) FROM activity_log))")
    conn.execute("VACUUM ANALYZE activity_log")
    conn.execute("VACUUM ANALYZE commit_position")


def timed(client, url: str, headers: dict, calls: int) -> list[float]:
    """In-process time of ``calls`` requests (ms)."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)
    return times


def explain(db, user, head) -> str:
    """The database's own time for the feed's one query with nothing new."""
    from sqlalchemy import text

    from taskapp.events import log

    params = {"listener_id": user.id, "since_seq": head.seq, "since_id": head.id, "limit": 101}
    query = log.read_query(True, user.role).params(params)
    sql = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = db.session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).scalars().all()
    db.session.rollback()
    times = [line.strip() for line in plan if "Execution Time" in line or "Planning Time" in line]
    return "; ".join(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    use_database(DATABASE)
    ensure_database()
    seeded = current_seed() or {}
    if (seeded.get("users"), seeded.get("tasks")) != (args.users, args.tasks):
        print(f"seeding {args.users} users, {args.tasks} tasks ...", flush=True)
        seed(args.users, args.tasks, quiet=True)
    with connect(autocommit=True) as conn:
        seed_history(conn)
        admin_id, intern_id = conn.execute(
            "SELECT (SELECT min(id) FROM user_account WHERE role = 'ADMIN'),"
            " (SELECT min(id) FROM user_account WHERE role = 'INTERN')"
        ).fetchone()
        (entries,) = conn.execute("SELECT count(*) FROM activity_log").fetchone()
    run(admin_id, intern_id, entries, args.calls)


def run(admin_id: int, intern_id: int, entries: int, calls: int) -> None:
    from bench.inprocess import make_app
    from taskapp.auth.tokens import issue_tokens
    from taskapp.events import log, signed
    from taskapp.extensions import db
    from taskapp.tasks.models import Task
    from taskapp.users.models import User

    app = make_app()
    client = app.test_client()
    with app.app_context():
        users = {
            name: db.session.get(User, uid)
            for name, uid in [("admin", admin_id), ("intern", intern_id)]
        }
        headers = {
            n: {"Authorization": f"Bearer {issue_tokens(u)['access']}"} for n, u in users.items()
        }
        head = log.head(db.session)
        token = signed.dump(
            app.config["JWT_SECRET_KEY"], signed.FEED_SALT, signed.Token(head, int(time.time()))
        )
        task_id = db.session.execute(
            db.select(Task.id).where(Task.assigned_to_id == intern_id).limit(1)
        ).scalar_one()
        db.session.remove()
    print(f"taskapp_bench_live: {entries:,} log entries, head {head}")
    feed_url = f"/api/tasks/changes/?since={token}"
    results = {}
    for name in ("admin", "intern"):
        timed(client, feed_url, headers[name], 20)  # warm up
        results[f"unchanged feed, {name}"] = timed(client, feed_url, headers[name], calls)
    results["baseline GET /api/tasks/{id}/, intern"] = timed(
        client, f"/api/tasks/{task_id}/", headers["intern"], calls
    )
    for label, times in results.items():
        figures = latency_figures(times)
        print(f"  {label:40s} median {figures['median']:6.2f} ms   p99 {figures['p99']:6.2f} ms")
    with app.app_context():
        for name, user in users.items():
            print(f"  EXPLAIN ANALYZE, unchanged feed query ({name}): {explain(db, user, head)}")
    base = statistics.median(results["baseline GET /api/tasks/{id}/, intern"])
    for name in ("admin", "intern"):
        median = statistics.median(results[f"unchanged feed, {name}"])
        met = verdict(median < TARGET_MS)
        print(
            f"  target unchanged feed ({name}) median < {TARGET_MS} ms: {met}"
            f" ({median:.2f} ms, {median / base:.2f}x a one-task GET)"
        )


if __name__ == "__main__":
    main()
