"""Bounded load test: mixed task CRUD from concurrent asyncio clients, then an exact
reconciliation of the audit log against the writes the clients saw succeed.

    .venv/bin/python -m reliability.load [--duration 60] [--clients 32] [--workers 4]

Everything runs on loopback against throwaway servers started here and killed at the end
(a private PostgreSQL cluster in a temp dir on ``--pg-port``, a Redis on ``--redis-port``,
gunicorn on ``--http-port``; the shared servers on 5432/6379 are not used). gunicorn runs
the production command (``gunicorn wsgi:app``, ``TASKAPP_ENV=production``) with
``--workers`` sync workers (or ``--threads`` > 1: gthread).

Clients: one ADMIN user and ``--interns`` INTERN users; every client logs in on its own
(``--admin-clients`` of them as the admin, the rest spread over the interns). For
``--duration`` seconds each client loops over a weighted mix: create, list (random
filters and ordering), get, patch, delete, stats and activity-log pages. Every PATCH sets
a title no one used before, so every successful PATCH changes something and must leave
exactly one UPDATED or STATUS_CHANGED entry; half of the PATCHes and DELETEs send
``If-Match`` (a stale one answers 412 and must change nothing). Admin clients also
patch other users' tasks picked from list pages, which makes real contention (412s for
the owner's next If-Match, 404s for a task deleted meanwhile).

Afterwards (SQL on the database, and the API's own counts):

- CREATED entries == successful POSTs, and their task ids are exactly the ids answered;
- DELETED entries == successful DELETEs, same ids;
- UPDATED + STATUS_CHANGED entries == successful PATCHes, per task id;
- entries per actor == successful writes per user; no entry from anyone else;
- the task table holds exactly the created-minus-deleted ids;
- zero answers >= 500, zero transport errors.

Exit status 0 only if all of that holds. The run stops by itself: the clients stop
issuing requests at the deadline, in-flight requests are bounded by the client timeout,
and the whole script by a hard limit.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from reliability.infra import Stack, hard_deadline, install_signal_handlers

ADMIN = "load-admin"
PASSWORD = "load-password-not-secret"
KINDS = ("create", "list", "get", "patch", "delete", "stats", "logs", "login")
WEIGHTS = {"create": 22, "list": 22, "get": 15, "patch": 23, "delete": 9, "stats": 6, "logs": 3}
ADMIN_PATCH_OTHER_WEIGHT = 6
EXPECTED = {
    "create": {201},
    "list": {200},
    "get": {200},
    "patch": {200, 412},  # 412: our If-Match went stale (an admin changed the task)
    "patch-other": {200, 404},  # 404: the owner deleted it meanwhile
    "delete": {204, 412},
    "stats": {200},
    "logs": {200},
    "login": {200},
}
ORDERINGS = ["-created_at", "due_date", "-priority,due_date", "title", "-updated_at", "status,-id"]
STATUSES = ["PENDING", "IN_PROGRESS", "COMPLETED"]
PRIORITIES = ["LOW", "MEDIUM", "HIGH"]


@dataclass
class Totals:
    latencies: dict = field(default_factory=lambda: defaultdict(list))
    statuses: dict = field(default_factory=lambda: defaultdict(Counter))
    transport_errors: Counter = field(default_factory=Counter)
    created: dict = field(default_factory=dict)  # task id -> user id
    deleted: dict = field(default_factory=dict)  # task id -> user id
    patched: Counter = field(default_factory=Counter)  # task id -> successful PATCHes
    writes_by_user: Counter = field(default_factory=Counter)
    status_changes: int = 0  # PATCHes whose answer shows a different status than before


@dataclass
class Session:
    index: int
    username: str
    user_id: int
    role: str
    token: str
    rng: random.Random
    pool: dict = field(default_factory=dict)  # own task id -> (etag, status)
    seen: list = field(default_factory=list)  # ids from the last list page (admins)
    seq: int = 0


class LoadClient:
    def __init__(self, http: httpx.AsyncClient, totals: Totals):
        self.http = http
        self.totals = totals

    async def call(
        self, kind: str, method: str, url: str, session: Session | None = None, **kwargs
    ):
        headers = kwargs.pop("headers", {})
        if session is not None:
            headers["Authorization"] = f"Bearer {session.token}"
        started = time.perf_counter()
        try:
            response = await self.http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as error:
            self.totals.transport_errors[f"{kind}: {type(error).__name__}"] += 1
            self.totals.statuses[kind][0] += 1
            return None
        self.totals.latencies[kind].append(time.perf_counter() - started)
        self.totals.statuses[kind][response.status_code] += 1
        return response


def _pick(rng: random.Random, session: Session) -> str:
    weights = dict(WEIGHTS)
    if session.role == "ADMIN":
        weights["patch-other"] = ADMIN_PATCH_OTHER_WEIGHT
    kind = rng.choices(list(weights), weights=list(weights.values()))[0]
    if kind in {"get", "patch", "delete"} and not session.pool:
        return "create"
    if kind == "delete" and len(session.pool) < 3:
        return "create"
    if kind == "patch-other" and not session.seen:
        return "list"
    return kind


def _due(rng: random.Random) -> str | None:
    if rng.random() < 0.2:
        return None
    return (datetime.now(UTC).date() + timedelta(days=rng.randint(-10, 40))).isoformat()


async def _refresh_etag(client: LoadClient, s: Session, task_id: int) -> None:
    """After a 412, learn the task's current ETag and status, as a real client would."""
    fresh = await client.call("get", "GET", f"/api/tasks/{task_id}/", s)
    if fresh is not None and fresh.status_code == 200:
        s.pool[task_id] = (fresh.headers["ETag"], fresh.json()["status"])


async def _create(client: LoadClient, s: Session, interns: list[int]) -> None:
    rng = s.rng
    body = {
        "title": f"c{s.index}-{s.seq}",
        "description": "load " * rng.randint(0, 20),
        "priority": rng.choice(PRIORITIES),
        "due_date": _due(rng),
    }
    if s.role == "ADMIN" and rng.random() < 0.5:
        body["assigned_to"] = rng.choice(interns)
    r = await client.call("create", "POST", "/api/tasks/", s, json=body)
    if r is not None and r.status_code == 201:
        task = r.json()
        s.pool[task["id"]] = (r.headers["ETag"], task["status"])
        client.totals.created[task["id"]] = s.user_id
        client.totals.writes_by_user[s.user_id] += 1


def _list_params(rng: random.Random) -> dict:
    params = {"page_size": rng.choice([10, 20, 50]), "ordering": rng.choice(ORDERINGS)}
    if rng.random() < 0.4:
        params["status"] = ",".join(rng.sample(STATUSES, rng.randint(1, 2)))
    if rng.random() < 0.2:
        params["priority"] = rng.choice(PRIORITIES)
    if rng.random() < 0.2:
        params["due_date__lte"] = _due(rng) or "2030-01-01"
    if rng.random() < 0.1:
        params["search"] = f"c{rng.randint(0, 31)}-"
    return params


async def _list(client: LoadClient, s: Session, interns: list[int]) -> None:
    r = await client.call("list", "GET", "/api/tasks/", s, params=_list_params(s.rng))
    if r is not None and r.status_code == 200 and s.role == "ADMIN":
        s.seen = [t["id"] for t in r.json()["results"] if t["id"] not in s.pool]


async def _get(client: LoadClient, s: Session, interns: list[int]) -> None:
    task_id = s.rng.choice(list(s.pool))
    r = await client.call("get", "GET", f"/api/tasks/{task_id}/", s)
    if r is not None and r.status_code == 200:
        s.pool[task_id] = (r.headers["ETag"], r.json()["status"])


def _patch_body(s: Session) -> dict:
    rng = s.rng
    body = {"title": f"p{s.index}-{s.seq}"}
    if rng.random() < 0.4:
        body["status"] = rng.choice(STATUSES)
    if rng.random() < 0.3:
        body["priority"] = rng.choice(PRIORITIES)
    if rng.random() < 0.2:
        body["due_date"] = _due(rng)
    return body


async def _patch(client: LoadClient, s: Session, interns: list[int]) -> None:
    totals, rng = client.totals, s.rng
    task_id = rng.choice(list(s.pool))
    etag, status = s.pool[task_id]
    body = _patch_body(s)
    headers = {"If-Match": etag} if rng.random() < 0.5 else {}
    r = await client.call("patch", "PATCH", f"/api/tasks/{task_id}/", s, json=body, headers=headers)
    if r is not None and r.status_code == 200:
        task = r.json()
        if task["status"] != status:
            totals.status_changes += 1
        s.pool[task_id] = (r.headers["ETag"], task["status"])
        totals.patched[task_id] += 1
        totals.writes_by_user[s.user_id] += 1
    elif r is not None and r.status_code == 412:
        await _refresh_etag(client, s, task_id)


async def _patch_other(client: LoadClient, s: Session, interns: list[int]) -> None:
    rng = s.rng
    task_id = rng.choice(s.seen)
    body = {"title": f"x{s.index}-{s.seq}"}
    if rng.random() < 0.3:
        body["priority"] = rng.choice(PRIORITIES)
    r = await client.call("patch-other", "PATCH", f"/api/tasks/{task_id}/", s, json=body)
    if r is not None and r.status_code == 200:
        client.totals.patched[task_id] += 1
        client.totals.writes_by_user[s.user_id] += 1
    elif r is not None and r.status_code == 404:
        s.seen.remove(task_id)


async def _delete(client: LoadClient, s: Session, interns: list[int]) -> None:
    rng = s.rng
    task_id = rng.choice(list(s.pool))
    headers = {"If-Match": s.pool[task_id][0]} if rng.random() < 0.5 else {}
    r = await client.call("delete", "DELETE", f"/api/tasks/{task_id}/", s, headers=headers)
    if r is not None and r.status_code == 204:
        del s.pool[task_id]
        client.totals.deleted[task_id] = s.user_id
        client.totals.writes_by_user[s.user_id] += 1
    elif r is not None and r.status_code == 412:
        await _refresh_etag(client, s, task_id)


async def _stats(client: LoadClient, s: Session, interns: list[int]) -> None:
    await client.call("stats", "GET", "/api/tasks/stats/", s)


async def _logs(client: LoadClient, s: Session, interns: list[int]) -> None:
    await client.call("logs", "GET", "/api/activity-logs/", s, params={"page_size": 20})


ACTIONS = {
    "create": _create,
    "list": _list,
    "get": _get,
    "patch": _patch,
    "patch-other": _patch_other,
    "delete": _delete,
    "stats": _stats,
    "logs": _logs,
}


async def client_loop(client: LoadClient, s: Session, interns: list[int], deadline: float) -> None:
    while time.monotonic() < deadline:
        kind = _pick(s.rng, s)
        s.seq += 1
        await ACTIONS[kind](client, s, interns)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(rows: list[list], headers: list[str]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join(
        [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)]
    )


async def run_load(
    base: str, args, sessions: list[Session], interns: list[int], totals: Totals
) -> float:
    # Idle connections are dropped after 1 s, before gunicorn's own keep-alive (2 s, gthread
    # only; sync workers close every connection) closes them under our feet: with httpx's
    # default of 5 s a request sent on a connection the server is closing fails (ReadError).
    limits = httpx.Limits(
        max_connections=args.clients + 8,
        max_keepalive_connections=args.clients + 8,
        keepalive_expiry=1.0,
    )
    async with httpx.AsyncClient(
        base_url=base, timeout=args.request_timeout, limits=limits
    ) as http:
        client = LoadClient(http, totals)
        started = time.monotonic()
        deadline = started + args.duration
        loops = [client_loop(client, s, interns, deadline) for s in sessions]
        await asyncio.wait_for(
            asyncio.gather(*loops), timeout=args.duration + args.request_timeout + 30
        )
        return time.monotonic() - started


async def login_all(
    base: str, sessions_spec: list[tuple[str, int, str]], seed: int, totals: Totals
) -> list[Session]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        client = LoadClient(http, totals)
        sem = asyncio.Semaphore(4)  # argon2 is memory-hard: do not log 32 users in at once

        async def one(index: int, username: str, user_id: int, role: str) -> Session:
            async with sem:
                r = await client.call(
                    "login",
                    "POST",
                    "/api/auth/login/",
                    json={"username": username, "password": PASSWORD},
                )
            if r is None or r.status_code != 200:
                raise RuntimeError(
                    f"login of {username} failed: {r.status_code if r else 'no answer'}"
                )
            return Session(
                index,
                username,
                user_id,
                role,
                r.json()["access"],
                random.Random(seed * 1000 + index),
            )

        return list(await asyncio.gather(*(one(i, *spec) for i, spec in enumerate(sessions_spec))))


def _audit_log(stack: Stack, baseline_log_id: int) -> tuple[list, set]:
    """The entries written since ``baseline_log_id`` and the task ids in the table now."""
    with stack.pg.connect(stack.database) as conn:
        rows = conn.execute(
            "SELECT action, task_id, actor_id, source FROM activity_log WHERE id > %s",
            [baseline_log_id],
        ).fetchall()
        tasks_now = {r[0] for r in conn.execute("SELECT id FROM task")}
    return rows, tasks_now


def _entry_checks(rows: list, totals: Totals) -> list:
    """CREATED / DELETED / UPDATED + STATUS_CHANGED entries against the clients' writes."""
    by_action = defaultdict(list)
    for action, task_id, _, _ in rows:
        by_action[action].append(task_id)
    created = Counter(by_action["CREATED"])
    deleted = Counter(by_action["DELETED"])
    patches = Counter(by_action["UPDATED"] + by_action["STATUS_CHANGED"])
    n_post, n_delete = len(totals.created), len(totals.deleted)
    other = set(by_action) - {"CREATED", "DELETED", "UPDATED", "STATUS_CHANGED"}
    return [
        (
            "CREATED entries == successful POSTs (same task ids, one each)",
            created.total() == n_post and created == Counter(totals.created.keys()),
            f"entries {created.total()}, POST 201 {n_post}",
        ),
        (
            "DELETED entries == successful DELETEs (same task ids, one each)",
            deleted.total() == n_delete and deleted == Counter(totals.deleted.keys()),
            f"entries {deleted.total()}, DELETE 204 {n_delete}",
        ),
        (
            "UPDATED + STATUS_CHANGED entries == successful PATCHes (per task id)",
            patches == totals.patched,
            f"entries {patches.total()} (UPDATED {len(by_action['UPDATED'])}, "
            f"STATUS_CHANGED {len(by_action['STATUS_CHANGED'])}), PATCH 200 "
            f"{totals.patched.total()} (status changed in "
            f"{totals.status_changes} of them as the client saw it)",
        ),
        (
            "no other entries (no MARKED_OVERDUE: no worker ran)",
            not other,
            f"other actions: {sorted(other) or 'none'}",
        ),
    ]


def _api_counts(base: str, admin_token: str) -> dict:
    """The activity-log counts through the API (the admin sees every entry)."""
    counts = {}
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        for action in ("CREATED", "DELETED", "UPDATED,STATUS_CHANGED"):
            r = http.get("/api/activity-logs/", params={"action": action, "page_size": 1})
            counts[action] = r.json()["count"] if r.status_code == 200 else f"HTTP {r.status_code}"
    return counts


def reconcile(
    stack: Stack, baseline_log_id: int, totals: Totals, admin_token: str, base: str
) -> list:
    """[(check, ok, figures)]"""
    rows, tasks_now = _audit_log(stack, baseline_log_id)
    actors = Counter(r[2] for r in rows)
    sources = Counter(r[3] for r in rows)
    expected_tasks = set(totals.created) - set(totals.deleted)
    api_counts = _api_counts(base, admin_token)
    expected_counts = {
        "CREATED": len(totals.created),
        "DELETED": len(totals.deleted),
        "UPDATED,STATUS_CHANGED": totals.patched.total(),
    }
    return [
        *_entry_checks(rows, totals),
        (
            "entries per actor == successful writes per user; all from the API",
            actors == totals.writes_by_user and set(sources) <= {"api"},
            f"{len(actors)} actors, {actors.total()} entries; sources {dict(sources)}",
        ),
        (
            "task table == created minus deleted ids",
            tasks_now == expected_tasks,
            f"tasks {len(tasks_now)}, expected {len(expected_tasks)}",
        ),
        (
            "the API's activity-log counts agree",
            api_counts == expected_counts,
            ", ".join(f"{k} {v}" for k, v in api_counts.items()),
        ),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reliability.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--duration", type=float, default=60, help="seconds of load (default 60, max 600)"
    )
    parser.add_argument(
        "--clients", type=int, default=32, help="concurrent clients (default 32, max 256)"
    )
    parser.add_argument(
        "--admin-clients",
        type=int,
        default=None,
        help="clients logged in as the ADMIN (default clients/8)",
    )
    parser.add_argument("--interns", type=int, default=7, help="INTERN users (default 7)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per worker; >1 uses gthread (default 1: sync)",
    )
    parser.add_argument("--request-timeout", type=float, default=30)
    parser.add_argument("--pg-port", type=int, default=55433)
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--http-port", type=int, default=8812)
    parser.add_argument("--seed", type=int, default=1, help="random seed of the request mix")
    parser.add_argument(
        "--access-log", action="store_true", help="gunicorn access log (off by default)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 600 or not 0 < args.clients <= 256:
        parser.error("--duration must be in (0, 600] and --clients in (0, 256]")
    if args.admin_clients is None:
        args.admin_clients = max(1, args.clients // 8)
    if not 0 <= args.admin_clients <= args.clients or (
        args.admin_clients < args.clients and args.interns < 1
    ):
        parser.error("bad --admin-clients / --interns")
    args.mode = (
        f"{args.workers} workers x {args.threads} threads (gthread)"
        if args.threads > 1
        else f"{args.workers} sync workers"
    )
    return args


def make_users(base: str, n_interns: int) -> tuple[str, int, list[tuple[str, int]]]:
    """Log the ADMIN in and create the INTERN users through the API; (admin token, admin
    id, [(intern username, id)])."""
    with httpx.Client(base_url=base, timeout=60) as http:
        admin_login = http.post("/api/auth/login/", json={"username": ADMIN, "password": PASSWORD})
        admin_token = admin_login.json()["access"]
        auth = {"Authorization": f"Bearer {admin_token}"}
        admin_id = http.get("/api/auth/me/", headers=auth).json()["id"]
        interns = []
        for i in range(n_interns):
            r = http.post(
                "/api/users/",
                headers=auth,
                json={"username": f"load-intern-{i}", "password": PASSWORD, "role": "INTERN"},
            )
            r.raise_for_status()
            interns.append((f"load-intern-{i}", r.json()["id"]))
    return admin_token, admin_id, interns


@dataclass
class Outcome:
    """What a run leaves for the report."""

    elapsed: float
    checks: list
    traces: int
    client_cpu: float
    loadavg: tuple


def run_against(stack: Stack, args: argparse.Namespace, totals: Totals) -> Outcome:
    """Users, logins, the load and the reconciliation on a started ``stack``."""
    stack.migrate()
    stack.create_user(ADMIN, PASSWORD, "ADMIN")
    gunicorn = stack.gunicorn(
        args.http_port, workers=args.workers, threads=args.threads, access_log=args.access_log
    )
    base = f"http://127.0.0.1:{args.http_port}"
    admin_token, admin_id, interns = make_users(base, args.interns)
    spec = [(ADMIN, admin_id, "ADMIN")] * args.admin_clients
    spec += [
        (*interns[i % len(interns)], "INTERN") for i in range(args.clients - args.admin_clients)
    ]
    with stack.pg.connect(stack.database) as conn:
        baseline = conn.execute("SELECT coalesce(max(id), 0) FROM activity_log").fetchone()[0]
    sessions = asyncio.run(login_all(base, spec, args.seed, totals))
    login_statuses = dict(totals.statuses.pop("login"))
    totals.latencies.pop("login", None)
    print(
        f"gunicorn {args.mode}; PostgreSQL {stack.pg.port} (private cluster, default settings); "
        f"{args.clients} clients ({args.admin_clients} as ADMIN, "
        f"{args.clients - args.admin_clients} over "
        f"{args.interns} INTERN users; logins {login_statuses}); {args.duration:.0f} s",
        flush=True,
    )
    elapsed = asyncio.run(run_load(base, args, sessions, [uid for _, uid in interns], totals))
    loadavg = os.getloadavg()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    checks = reconcile(stack, baseline, totals, admin_token, base)
    traces = gunicorn.log_text().count("Traceback")
    return Outcome(elapsed, checks, traces, usage.ru_utime + usage.ru_stime, loadavg)


def _figures_row(label: str, counts: Counter, lat: list[float], elapsed: float) -> list:
    ms = [f"{percentile(lat, q) * 1000:.0f}" for q in (0.5, 0.9, 0.99)]
    return [
        label,
        counts.total(),
        f"{counts.total() / elapsed:.1f}",
        *ms,
        f"{max(lat) * 1000:.0f}" if lat else "-",
        " ".join(f"{code}:{n}" for code, n in sorted(counts.items())),
    ]


def figures(totals: Totals, elapsed: float) -> list[list]:
    """One row per kind of request, and one for all of them."""
    rows = []
    for kind in ("create", "list", "get", "patch", "patch-other", "delete", "stats", "logs"):
        counts = totals.statuses.get(kind, Counter())
        if counts:
            rows.append(_figures_row(kind, counts, totals.latencies.get(kind, []), elapsed))
    all_lat = [v for values in totals.latencies.values() for v in values]
    all_codes = sum(totals.statuses.values(), Counter())
    rows.append(_figures_row("all", all_codes, all_lat, elapsed))
    return rows


def answer_checks(totals: Totals) -> list:
    """No 5xx, no transport error, no unexpected status for its kind of request."""
    all_codes = sum(totals.statuses.values(), Counter())
    server_errors = sum(n for code, n in all_codes.items() if code >= 500)
    unexpected = {
        kind: {c: n for c, n in counts.items() if c not in EXPECTED[kind]}
        for kind, counts in totals.statuses.items()
    }
    unexpected = {k: v for k, v in unexpected.items() if v}
    return [
        ("zero answers >= 500", server_errors == 0, f"{server_errors}"),
        (
            "zero transport errors (refused, reset, timeout)",
            not totals.transport_errors,
            f"{dict(totals.transport_errors) or 0}",
        ),
        (
            "only expected status codes per kind",
            not unexpected,
            f"unexpected: {unexpected or 'none'}",
        ),
    ]


def write_json(path: Path, args: argparse.Namespace, outcome: Outcome, rows, checks, load1):
    args_out = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args_out.pop("mode", None)
    path.write_text(
        json.dumps(
            {
                "args": args_out,
                "gunicorn": args.mode,
                "elapsed": outcome.elapsed,
                "requests": rows[-1][1],
                "table": rows,
                "checks": [{"name": n, "ok": ok, "figures": f} for n, ok, f in checks],
                "loadavg": [load1, outcome.loadavg],
                "client_cpu_seconds": outcome.client_cpu,
            },
            indent=2,
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    hard_deadline(int(args.duration) + 600)
    totals = Totals()
    load1 = os.getloadavg()
    with Stack(
        "load",
        pg_port=args.pg_port,
        redis_port=args.redis_port,
        keep=args.keep,
        extra_env={"JWT_ACCESS_TOKEN_LIFETIME_SECONDS": str(int(args.duration) + 900)},
    ) as stack:
        outcome = run_against(stack, args, totals)
    rows = figures(totals, outcome.elapsed)
    headers = ["kind", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "status codes"]
    print("\n" + table(rows, headers))
    requests, elapsed = rows[-1][1], outcome.elapsed
    print(
        f"\n{requests} requests in {elapsed:.1f} s = {requests / elapsed:.1f} req/s; "
        f"successful writes: POST {len(totals.created)}, PATCH {totals.patched.total()}, "
        f"DELETE {len(totals.deleted)}; load average {load1[0]:.1f} before, "
        f"{outcome.loadavg[0]:.1f} after ({os.cpu_count()} cores, shared machine); "
        f"this client process used {outcome.client_cpu:.1f} s of CPU"
    )
    checks = [*answer_checks(totals), *outcome.checks]
    print()
    for name, ok, figures_text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {figures_text}")
    print(f"      gunicorn log: {outcome.traces} traceback(s)")
    failed = [c for c in checks if not c[1]]
    print(f"\n{len(checks) - len(failed)} passed, {len(failed)} failed")
    if args.json:
        write_json(args.json, args, outcome, rows, checks, load1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
