"""Seed the bench database with N users and N tasks, fast: COPY (bench/README.md, "Seed")."""

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from argon2 import PasswordHasher

from bench.common import PASSWORD, connect, db_name, ensure_database, exclusive_run

STATUSES = {"COMPLETED": 0.40, "PENDING": 0.30, "IN_PROGRESS": 0.15, "OVERDUE": 0.15}
PRIORITIES = {1: 0.30, 2: 0.50, 3: 0.20}  # LOW, MEDIUM, HIGH as stored
VERBS = "Review Write Fix Update Prepare Plan Test Deploy Document Refactor Call Email"
NOUNS = "report invoice onboarding backlog release budget API contract dashboard migration "
NOUNS += "newsletter roadmap audit design survey"
VERBS, NOUNS = VERBS.split(), NOUNS.split()
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure "
    "dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. "
    "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt "
    "mollit anim id est laborum. "
) * 2
TASK_COLUMNS = (
    "title, description, status, priority, due_date, assigned_to_id, created_by_id, "
    "created_at, updated_at, completed_at, version"
)
CHUNK = 20_000
SEEDED_TABLES = (
    "user_account",
    "task",
    "task_search",
    "task_search_title",
    "task_counter",
    "activity_log",
)
"""The tables the seed fills (the COPY and the side tables' copies), analyzed after it."""
COUNTER_KEY = "assigned_to_id, status, priority, has_due_date"
COUNTED = (
    "SELECT assigned_to_id, status, priority, due_date IS NOT NULL AS has_due_date, "
    "count(*) AS n FROM task GROUP BY 1, 2, 3, 4"
)
"""task_counter's rows as the triggers of migrations 0002 and 0013 keep them."""
REBUILD_COUNTER = f"INSERT INTO task_counter ({COUNTER_KEY}, n) {COUNTED}"
COUNTER_MISMATCHES = (
    f"SELECT count(*) FROM ({COUNTED}) AS t FULL JOIN task_counter AS c "
    f"USING ({COUNTER_KEY}) WHERE t.n IS DISTINCT FROM c.n"
)


def user_rows(n_users: int, password_hash: str, now: datetime):
    n_admins = max(1, n_users // 20)
    joined = (now - timedelta(days=800)).isoformat()
    for i in range(1, n_users + 1):
        role = "ADMIN" if i <= n_admins else "INTERN"
        name = f"admin{i:03d}" if role == "ADMIN" else f"intern{i - n_admins:03d}"
        yield f"{i}\t{name}\t{name}@bench.invalid\t{role}\tt\t{joined}\t{password_hash}\t1\n"


def task_chunks(n_tasks: int, n_users: int, seed: int, now: datetime):
    """Yield COPY text chunks of tasks, in created_at (so id) order."""
    rng = random.Random(seed)
    rand, randint = rng.random, rng.randint
    spreads = [(list(s), list(accumulate(s.values()))) for s in (STATUSES, PRIORITIES)]
    n_admins = max(1, n_users // 20)
    today = now.date()
    days = {offset: (today + timedelta(days=offset)).isoformat() for offset in range(-800, 800)}
    span = 730 * 86400
    start = now.timestamp() - span
    step = span / n_tasks
    lorem_len = len(LOREM) // 2
    buffer = []
    for n in range(n_tasks):
        created = start + n * step + rand() * step
        status, priority = (rng.choices(values, cum_weights=cum)[0] for values, cum in spreads)
        if status == "OVERDUE":
            due = days[-randint(1, 365)]
        elif status == "COMPLETED":
            due = "\\N" if rand() < 0.10 else days[randint(-365, 90)]
        else:
            due = "\\N" if rand() < 0.10 else days[randint(0, 365)]
        assignee = randint(1, n_users)
        creator = assignee if rand() < 0.70 else randint(1, n_admins)
        updated = min(created + rand() * 30 * 86400, now.timestamp())
        completed = _ts(updated) if status == "COMPLETED" else "\\N"
        offset = randint(0, lorem_len)
        description = LOREM[offset : offset + int(rand() ** 2 * 400)].strip()
        title = f"{VERBS[n % len(VERBS)]} {NOUNS[n % len(NOUNS)]} #{n + 1}"
        version = 1 if status == "PENDING" and rand() < 0.5 else randint(2, 5)
        buffer.append(
            f"{title}\t{description}\t{status}\t{priority}\t{due}\t{assignee}\t{creator}\t"
            f"{_ts(created)}\t{_ts(updated)}\t{completed}\t{version}\n"
        )
        if len(buffer) == CHUNK:
            yield "".join(buffer)
            buffer = []
    if buffer:
        yield "".join(buffer)


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(sep=" ", timespec="microseconds")


def _secondary_indexes(conn) -> list[tuple[str, str]]:
    """(name, definition) of the secondary indexes of the task table and of its search
    text (task_search, task_search_title), from the catalog."""
    return conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid IN ('task'::regclass, 'task_search'::regclass, "
        "'task_search_title'::regclass) AND NOT i.indisprimary"
    ).fetchall()


def _copy_rows(conn, meta: dict, password_hash: str, now: datetime) -> None:
    n_users, n_tasks = meta["users"], meta["tasks"]
    with conn.cursor().copy(
        "COPY user_account (id, username, email, role, is_active, date_joined, "
        "password_hash, token_version) FROM STDIN"
    ) as copy:
        for row in user_rows(n_users, password_hash, now):
            copy.write(row)
    conn.execute("SELECT setval('user_account_id_seq', (SELECT max(id) FROM user_account))")
    with conn.cursor().copy(f"COPY task ({TASK_COLUMNS}) FROM STDIN") as copy:
        for chunk in task_chunks(n_tasks, n_users, meta["seed"], now):
            copy.write(chunk)
    # What the triggers the COPY skips would have written (migrations 0012 and 0014).
    conn.execute(
        "INSERT INTO task_search (task_id, title, description, assigned_to_id) "
        "SELECT id, title, description, assigned_to_id FROM task"
    )
    conn.execute(
        "INSERT INTO task_search_title (task_id, lowered, assigned_to_id) "
        "SELECT id, lower(title), assigned_to_id FROM task"
    )


def _check_references(conn) -> None:
    dangling = conn.execute(
        "SELECT count(*) FROM task t LEFT JOIN user_account a ON a.id = t.assigned_to_id "
        "LEFT JOIN user_account c ON c.id = t.created_by_id WHERE a.id IS NULL OR c.id IS NULL"
    ).fetchone()[0]
    if dangling:
        raise RuntimeError(f"{dangling} seeded tasks point at no user")


def _rebuild_counter(conn) -> None:
    conn.execute(REBUILD_COUNTER)
    mismatches = conn.execute(COUNTER_MISMATCHES).fetchone()[0]
    if mismatches:
        raise RuntimeError(f"task_counter disagrees with task on {mismatches} key(s)")


def _load(conn, meta: dict, password_hash: str, now: datetime, say) -> dict:
    """Everything but VACUUM, in the caller's transaction; the timings."""
    timings = {}
    conn.execute("SET maintenance_work_mem = '512MB'")
    conn.execute("SET session_replication_role = replica")  # no triggers during the COPY
    conn.execute(
        "TRUNCATE activity_log, revoked_token, task, task_counter, task_search, "
        "task_search_title, user_account RESTART IDENTITY CASCADE"
    )
    indexes = _secondary_indexes(conn)
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    t = time.perf_counter()
    _copy_rows(conn, meta, password_hash, now)
    timings["copy_s"] = time.perf_counter() - t
    say(f"  COPY {meta['users']} users + {meta['tasks']} tasks: {timings['copy_s']:.1f} s")
    t = time.perf_counter()
    for _, definition in indexes:
        conn.execute(definition)
    timings["indexes_s"] = time.perf_counter() - t
    say(f"  rebuilt {len(indexes)} task and search text indexes: {timings['indexes_s']:.1f} s")
    conn.execute("SET session_replication_role = DEFAULT")
    _check_references(conn)
    t = time.perf_counter()
    _rebuild_counter(conn)
    timings["counter_s"] = time.perf_counter() - t
    say(f"  task_counter rebuilt and checked: {timings['counter_s']:.1f} s")
    conn.execute(f"COMMENT ON DATABASE \"{db_name()}\" IS 'bench seed {json.dumps(meta)}'")
    return timings


def seed(n_users: int, n_tasks: int, seed_value: int = 42, *, quiet: bool = False) -> dict:
    """(Re)load the bench database; returns timings and counts."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    t0 = time.perf_counter()
    ensure_database()
    now = datetime.now(UTC).replace(microsecond=0)
    hasher = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)  # app defaults
    password_hash = hasher.hash(PASSWORD)
    meta = {"users": n_users, "tasks": n_tasks, "seed": seed_value, "today": str(now.date())}
    with connect() as conn:
        timings = _load(conn, meta, password_hash, now, say)
        conn.commit()
    t = time.perf_counter()
    with connect(autocommit=True) as conn:
        for table in SEEDED_TABLES:
            conn.execute(f"VACUUM (ANALYZE) {table}")
    timings["vacuum_analyze_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    vacuum, total = timings["vacuum_analyze_s"], timings["total_s"]
    say(f"  VACUUM ANALYZE: {vacuum:.1f} s; seed total {total:.1f} s")
    return {**meta, **timings}


def current_seed() -> dict | None:
    """The parameters of the data now in the bench database, if it was seeded by us."""
    try:
        with connect() as conn:
            comment = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                [db_name()],
            ).fetchone()[0]
    except Exception:
        return None
    if not comment or not comment.startswith("bench seed "):
        return None
    return json.loads(comment.removeprefix("bench seed "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with exclusive_run(patience=900):
        result = seed(args.users, args.tasks, args.seed)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
