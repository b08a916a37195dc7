"""The app in this process against the bench database: SQL statements and round trips per
request (bench/README.md, "Statements per request"), the statements for EXPLAIN, profiles."""

import os
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from functools import partial

from psycopg.pq import Trace
from sqlalchemy import event

from bench.common import login, table, use_app_env
from bench.http_bench import LIST_PATH, POST_BODY, cleanup_writes

PAT_BODY = {"name": "bench", "scopes": ["tasks:read"]}


def make_app():
    use_app_env()
    from taskapp import create_app

    return create_app({"RATELIMIT_STORAGE_URI": "memory://", "PAT_RATE_LIMIT": "10000000/minute"})


class Recorder:
    """What the app's engine sends while :meth:`recording`: the SQL statements (SQLAlchemy
    events), BEGIN/COMMIT/ROLLBACK and pre-pings, and the round trips, read from libpq's
    protocol trace of every connection: one per ReadyForQuery the server sent, which
    ends each exchange the client waited for."""

    ENDS = ("begins", "commits", "rollbacks")

    def __init__(self, engine):
        self.active = False
        self.statements: list[tuple[str, object]] = []
        self.counts: Counter = Counter()
        self.trace = tempfile.TemporaryFile()  # noqa: SIM115 (open for the recorder's life)
        self.trace_start = 0
        engine.dispose()  # every connection from now on is traced from its start
        event.listen(engine, "connect", self._traced)
        event.listen(engine, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback"):
            event.listen(engine, name, partial(self._transaction, name + "s"))
        original_ping = engine.dialect.do_ping

        def counting_ping(dbapi_connection):
            self._count("pings")
            return original_ping(dbapi_connection)

        engine.dialect.do_ping = counting_ping

    def _traced(self, dbapi_connection, _record) -> None:
        pgconn = dbapi_connection.pgconn
        pgconn.trace(self.trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)

    def _count(self, name: str, sent: bool = True) -> None:
        self.counts[name] += self.active and sent

    def _statement(self, conn, cursor, statement, parameters, context, executemany):
        if self.active:
            self.statements.append((statement, parameters))

    def _transaction(self, name: str, conn) -> None:
        """A BEGIN/COMMIT/ROLLBACK is sent only outside autocommit (where the GETs run)."""
        self._count(name, not conn.connection.dbapi_connection.autocommit)

    @contextmanager
    def recording(self):
        self.statements, self.counts, self.active = [], Counter(), True
        self.trace_start = os.fstat(self.trace.fileno()).st_size
        try:
            yield self
        finally:
            self.active = False

    def _round_trips(self) -> int:
        self.trace.seek(self.trace_start)
        lines = self.trace.read().decode(errors="replace").splitlines()
        return sum(1 for line in lines if line.startswith("B\t") and "ReadyForQuery" in line)

    def summary(self) -> dict:
        counts = {name: self.counts[name] for name in ("pings", *self.ENDS)}
        return {"statements": len(self.statements), **counts, "round_trips": self._round_trips()}


class Client:
    """Test client with the ADMIN's and INTERN's bearer tokens and the INTERN's ``PAT``."""

    def __init__(self, app, admin: str, intern: str):
        self.app = app
        self.client = app.test_client()
        self.tokens = {"ADMIN": login(self.client, admin), "INTERN": login(self.client, intern)}
        made = self.request("INTERN", "POST", "/api/auth/tokens/", PAT_BODY)
        self.tokens["PAT"] = made.get_json()["token"]

    def request(self, role: str, method: str, url: str, body: dict | None = None, **headers):
        headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return self.client.open(url, method=method, headers=headers, json=body)

    def expect(self, status: int, role: str, method: str, url: str, body=None, **headers):
        response = self.request(role, method, url, body, **headers)
        if response.status_code != status:
            text = response.get_data(as_text=True)[:300]
            raise RuntimeError(f"{role} {method} {url}: {response.status_code} {text}")
        return response


@contextmanager
def in_process(users: dict):
    """A :class:`Client` of the app and a :class:`Recorder` on its engine; then cleaned up."""
    app = make_app()
    from taskapp.extensions import db

    with app.app_context():
        recorder = Recorder(db.engine)
    try:
        yield Client(app, users["admin"], users["intern"]), recorder
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        cleanup_writes(users["max_task_id"])


def endpoints(intern_task_id: int) -> list[tuple[str, str, str, str, dict | None, int]]:
    """(label, role, method, url, body, expected status) of the benchmarked requests."""
    return [
        ("INTERN list", "INTERN", "GET", LIST_PATH, None, 200),
        ("INTERN 304", "INTERN", "GET", LIST_PATH, None, 304),
        ("INTERN list, PAT", "PAT", "GET", LIST_PATH, None, 200),
        ("ADMIN list", "ADMIN", "GET", LIST_PATH, None, 200),
        ("INTERN detail", "INTERN", "GET", f"/api/tasks/{intern_task_id}/", None, 200),
        ("ADMIN detail", "ADMIN", "GET", f"/api/tasks/{intern_task_id}/", None, 200),
        ("INTERN POST", "INTERN", "POST", "/api/tasks/", POST_BODY, 201),
    ]


def count_statements(
    client: Client, recorder: Recorder, intern_task_id: int, timed: int = 50
) -> list[dict]:
    """Statements and round trips per endpoint; mean in-process time of ``timed`` more."""
    rows = []
    for label, role, method, url, body, expected in endpoints(intern_task_id):
        with client.app.app_context():
            etag = client.request(role, method, url, body).headers.get("ETag")  # warm
        headers = {"If-None-Match": etag} if expected == 304 else {}
        with recorder.recording():
            client.expect(expected, role, method, url, body, **headers)
        summary = recorder.summary()
        n = timed if method == "GET" else max(1, int(timed / 2.5))
        start = time.perf_counter()
        for _ in range(n):
            client.request(role, method, url, body, **headers)
        summary["in_process_ms"] = (time.perf_counter() - start) / n * 1000
        sql = [statement for statement, _ in recorder.statements]
        rows.append({"endpoint": label, "method": method, "url": url, **summary, "sql": sql})
    return rows


def profile(client: Client, intern_task_id: int, out_dir, seconds: float = 4.0) -> dict:
    """pyinstrument over repeated in-process requests of each endpoint; text reports."""
    from pyinstrument import Profiler

    reports = {}
    for label, role, method, url, body, _ in endpoints(intern_task_id):
        if label in ("ADMIN detail", "INTERN 304"):
            continue
        profiler = Profiler(interval=0.0005)
        profiler.start()
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            client.request(role, method, url, body)
            n += 1
        profiler.stop()
        name = label.lower().replace(" ", "_")
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        (out_dir / f"profile-{name}.txt").write_text(f"{n} requests\n{text}")
        reports[label] = {"requests": n, "file": f"bench/results/profile-{name}.txt"}
    return reports


def run(users: dict, timed: int = 50, profile_dir=None) -> list[dict]:
    """:func:`count_statements` (and, given ``profile_dir``, pyinstrument profiles)."""
    with in_process(users) as (client, recorder):
        rows = count_statements(client, recorder, users["intern_task_id"], timed)
        if profile_dir:
            print(profile(client, users["intern_task_id"], profile_dir))
    return rows


def report(rows: list[dict]) -> str:
    def besides(r: dict) -> str:
        ends = f"COMMIT {r['commits']}, ROLLBACK {r['rollbacks']}"
        return f"ping {r['pings']}, BEGIN {r['begins']}, {ends}"

    cells = [
        [r["endpoint"], r["statements"], r["round_trips"], besides(r), f"{r['in_process_ms']:.1f}"]
        for r in rows
    ]
    headers = ["request", "SQL statements", "round trips", "besides them", "in-process ms"]
    return table(cells, headers)
