"""After the load: let the system drain, then check what the clients were told against what
the database holds and what the webhook receiver got, and print the table."""

import time
from collections import Counter
from dataclasses import dataclass

import httpx

from reliability.cluster.hosts import HOOKS, Cluster
from reliability.cluster.workload import Load, Request

SETTLE = 2.0
"""Seconds after a fault's end that still count as its window (connections recovering)."""


@dataclass
class Fault:
    name: str
    start: float
    end: float = 0.0
    note: str = ""

    def covers(self, request: Request) -> bool:
        return request.started <= self.end + SETTLE and request.ended >= self.start


@dataclass
class Row:
    check: str
    ok: bool | None  # None: a figure, not an invariant
    figures: str


def reconcile(cluster: Cluster, load: Load, seeded: int, faults, sessions, admin, drain) -> bool:
    started = time.monotonic()
    drained = wait_drained(cluster, admin["webhook"], drain)
    drain_seconds = time.monotonic() - started
    with cluster.pg_connect() as conn:
        entries = conn.execute(
            "SELECT id, task_id, task_title, action, changes FROM activity_log ORDER BY id"
        ).fetchall()
        tasks = dict(conn.execute("SELECT id, title FROM task").fetchall())
        overdue = conn.execute(
            "SELECT t.id, t.status, count(a.id) FROM task t LEFT JOIN activity_log a "
            "ON a.task_id = t.id AND a.action = 'MARKED_OVERDUE' "
            "WHERE t.title LIKE 'overdue-%%' GROUP BY t.id, t.status"
        ).fetchall()
        deliveries = conn.execute(
            "SELECT entry_id, msg_id, status FROM webhook_delivery WHERE webhook_id = %s",
            (admin["webhook"],),
        ).fetchall()
    received = httpx.get(f"{HOOKS}/_records", timeout=10).json()

    rows = [
        Row(
            "drained: outbox empty, every delivery succeeded, every overdue task swept",
            drained,
            f"{drain_seconds:.0f} s after the load stopped (fails when nothing moves for"
            f" {drain} s)",
        )
    ]
    database_down = [f for f in faults if f.name.startswith("PostgreSQL")]
    rows += writes_rows(load, entries, tasks, database_down)
    rows += webhook_rows(entries, deliveries, received)
    rows += overdue_rows(overdue, seeded)
    rows.append(exits_row(cluster))
    rows += [Row(name, check["ok"], check["figures"]) for name, check in sessions.items()]
    rows += window_rows(load.requests(), faults)
    print_table(rows)
    return all(row.ok is not False for row in rows)


def wait_drained(cluster: Cluster, webhook_id: int, patience: float) -> bool:
    """Until nothing is left to relay, deliver or sweep; False when nothing moved for
    ``patience`` seconds (a stall: how long a big backlog takes is not what this checks,
    the fair dispatcher's pace is). What is left is printed every 10 s."""
    moved = shown = time.monotonic()
    last = None
    while time.monotonic() - moved < patience:
        try:
            with cluster.pg_connect() as conn:
                left = conn.execute(
                    "SELECT (SELECT count(*) FROM webhook_outbox),"
                    " (SELECT count(*) FROM webhook_delivery WHERE webhook_id = %s"
                    "    AND status <> 'succeeded'),"
                    " (SELECT count(*) FROM task WHERE title LIKE 'overdue-%%'"
                    "    AND status <> 'OVERDUE')",
                    (webhook_id,),
                ).fetchone()
            if not any(left):
                return True
            if left != last:
                moved, last = time.monotonic(), left
            if time.monotonic() - shown >= 10:
                shown = time.monotonic()
                outbox, deliveries, due = left
                print(f"  left: outbox {outbox}, deliveries {deliveries}, not yet overdue {due}")
        except Exception:
            pass
        time.sleep(1)
    return False


def raced_the_stop(write, database_down) -> bool:
    """A write answered 503 while PostgreSQL was stopping: its COMMIT may have reached the
    server and its acknowledgement been lost with the connection, so the app cannot know
    (reliability/faults found the same). Counted apart, not as a violation."""
    request = write.last
    return (
        request is not None
        and request.status == 503
        and any(f.covers(request) for f in database_down)
    )


def entry_counts(entries):
    """The clients' tasks' audit entries: CREATED by title, UPDATED by (task, new title),
    DELETED by task, and anything else."""
    created = Counter()  # task_title -> CREATED entries
    renamed = Counter()  # (task_id, new title) -> UPDATED entries
    deleted = Counter()  # task_id -> DELETED entries
    other = []
    for _id, task_id, title, action, changes in entries:
        if not title.startswith("client"):
            continue
        if action == "CREATED":
            created[title] += 1
        elif action == "UPDATED" and "title" in (changes or {}):
            renamed[(task_id, changes["title"]["to"])] += 1
        elif action == "DELETED":
            deleted[task_id] += 1
        else:
            other.append((task_id, action))
    return created, renamed, deleted, other


def writes_rows(load: Load, entries, tasks, database_down) -> list[Row]:
    created, renamed, deleted, other = entry_counts(entries)
    writes = load.writes()
    by_outcome = Counter((w.kind, w.outcome) for w in writes)
    wrong: list[str] = []
    raced: list[str] = []
    delete_outcomes: dict[int, set] = {}
    delete_writes: dict[int, list] = {}
    for w in writes:
        if w.kind == "create":
            n = created[w.title]
        elif w.kind == "rename":
            n = renamed[(w.task_id, w.title)]
        else:
            delete_outcomes.setdefault(w.task_id, set()).add(w.outcome)
            delete_writes.setdefault(w.task_id, []).append(w)
            continue
        if (w.outcome == "ack" and n != 1) or (w.outcome == "refused" and n) or n > 1:
            problem = f"{w.kind} {w.title} ({w.outcome}, {w.last.status}): {n} entries"
            (raced if n == 1 and raced_the_stop(w, database_down) else wrong).append(problem)
    for task_id, outcomes in delete_outcomes.items():
        n = deleted[task_id]
        removed = outcomes & {"ack", "gone"}
        if (removed and n != 1) or n > 1 or (outcomes == {"refused"} and n):
            statuses = [w.last.status for w in delete_writes[task_id]]
            problem = f"delete of task {task_id} ({sorted(outcomes)}, {statuses}): {n} entries"
            ambiguous = n == 1 and all(
                raced_the_stop(w, database_down) for w in delete_writes[task_id]
            )
            (raced if ambiguous else wrong).append(problem)
    acked_ids = {w.task_id for w in writes if w.kind == "create" and w.outcome == "ack"}
    for task_id in acked_ids:
        if (task_id in tasks) == bool(deleted[task_id]):
            wrong.append(f"task {task_id}: present {task_id in tasks}, {deleted[task_id]} DELETED")
    known = {(w.task_id, w.title) for w in writes if w.kind == "rename"}
    invented = [key for key in renamed if key not in known]
    summary = ", ".join(f"{k} {o} {n}" for (k, o), n in sorted(by_outcome.items()))
    return [
        Row(
            "acknowledged writes present with exactly their audit entries; refused absent; "
            "a DELETE answered 404 removed its task once",
            not wrong,
            f"{summary}; violations {len(wrong)}" + (f": {wrong[:5]}" if wrong else ""),
        ),
        Row(
            "answered 503 while PostgreSQL stopped, yet committed (commit raced the stop)",
            None,
            f"{len(raced)}" + (f": {raced[:5]}" if raced else ""),
        ),
        Row(
            "no audit entry nobody asked for",
            not invented and not other,
            f"unexpected renames {len(invented)}, other actions {len(other)}",
        ),
    ]


def webhook_rows(entries, deliveries, received) -> list[Row]:
    entry_ids = {row[0] for row in entries}
    per_entry = Counter(entry_id for entry_id, _msg, _status in deliveries)
    msg_ids = {msg for _entry, msg, _status in deliveries}
    not_relayed = [e for e in entry_ids if per_entry[e] == 0]
    relayed_twice = [e for e, n in per_entry.items() if n > 1]
    verified = [r for r in received if r["verified"]]
    got = Counter(r["msg_id"] for r in verified)
    lost = msg_ids - set(got)
    invented = set(got) - msg_ids
    duplicates = sum(n - 1 for n in got.values())
    by_peer = Counter(r["peer"] for r in verified)
    return [
        Row(
            "every committed change got one message (one webhook-id)",
            not not_relayed and not relayed_twice,
            f"entries {len(entry_ids)}, messages {len(msg_ids)}, none {len(not_relayed)}, "
            f"several {len(relayed_twice)}",
        ),
        Row(
            "every message reached hooks, signature verified; none lost, none invented",
            not lost and not invented and len(verified) == len(received),
            f"received {len(received)} ({len(received) - len(verified)} unverified), distinct "
            f"{len(got)}, lost {len(lost)}, invented {len(invented)}; "
            f"senders {dict(sorted(by_peer.items()))}",
        ),
        Row("duplicates by redelivery (same webhook-id again)", None, str(duplicates)),
    ]


def overdue_rows(overdue, seeded: int) -> list[Row]:
    marked_once = sum(1 for _id, status, n in overdue if status == "OVERDUE" and n == 1)
    never = sum(1 for _id, _status, n in overdue if n == 0)
    twice = sum(1 for _id, _status, n in overdue if n > 1)
    return [
        Row(
            "each overdue task marked exactly once (one MARKED_OVERDUE)",
            len(overdue) == seeded and marked_once == seeded,
            f"seeded {seeded}, found {len(overdue)}, once {marked_once}, never {never}, "
            f"more than once {twice}",
        )
    ]


def window_rows(requests: list[Request], faults) -> list[Row]:
    rows = []
    inside = set()
    for fault in faults:
        hit = [r for r in requests if fault.covers(r)]
        inside.update(id(r) for r in hit)
        failed = Counter(f"{r.status} {r.kind}" for r in hit if r.failed)
        seconds = fault.end - fault.start
        rows.append(
            Row(
                f"fault: {fault.name}" + (f" ({fault.note})" if fault.note else ""),
                None,
                f"{seconds:.1f} s, {len(hit)} requests, failed {sum(failed.values())}"
                + (f" {dict(sorted(failed.items()))}" if failed else ""),
            )
        )
    calm = [r for r in requests if id(r) not in inside]
    failed = Counter(f"{r.status} {r.kind}" for r in calm if r.failed)
    times = sorted((r.ended - r.started) * 1000 for r in calm if not r.failed)
    p50 = times[len(times) // 2] if times else 0
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] if times else 0
    rows.append(
        Row(
            "outside fault windows: latency through the edge",
            None,
            f"{len(calm)} requests, failed {sum(failed.values())}"
            + (f" {dict(sorted(failed.items()))}" if failed else "")
            + f", p50 {p50:.0f} ms, p99 {p99:.0f} ms",
        )
    )
    return rows


def exits_row(cluster: Cluster) -> Row:
    """Processes that ended on their own and were started again (`restart:
    unless-stopped`): a figure, since the invariants above say whether anything was lost."""
    exits = [f"{e.name} ({e.code}): {e.last_error}" for e in cluster.exits]
    return Row(
        "exited on their own, started again as compose's restart policy does",
        None,
        f"{len(exits)}" + (f": {exits}" if exits else ""),
    )


def print_table(rows: list[Row]) -> None:
    print("\n| check | result | figures |\n|---|---|---|")
    for row in rows:
        mark = "-" if row.ok is None else ("PASS" if row.ok else "**FAIL**")
        print(f"| {row.check} | {mark} | {row.figures} |")
