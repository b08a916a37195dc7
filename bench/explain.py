"""EXPLAIN (ANALYZE, BUFFERS) of every task-list query shape; bench/README.md, "EXPLAIN"."""

from datetime import date, timedelta

from bench.common import connect, table
from bench.inprocess import in_process

ORDER_FIELDS = ("id", "title", "status", "priority", "due_date", "created_at", "updated_at")
AS_IS = "status=PENDING status=PENDING,IN_PROGRESS status=OVERDUE priority=HIGH priority=LOW,MEDIUM"
"""Shapes named by their own query string."""


def shapes(today: date, intern_id: int) -> list[tuple[str, str]]:
    """(label, query string) of every shape (bench/README.md, "EXPLAIN")."""
    d, month_ago = today.isoformat(), (today - timedelta(days=30)).isoformat()
    dues = [(f"due_date__{op}", f"due_date__{op}={d}") for op in ("gte", "lte", "gt", "lt")]
    nulls = [(f"due_date__isnull={v}",) * 2 for v in ("true", "false")]
    orderings = [(f"ordering={s}{f}",) * 2 for f in ORDER_FIELDS for s in ("", "-")]
    soon = today + timedelta(days=30)
    return [
        ("default (-created_at)", ""),
        *((query, query) for query in AS_IS.split()),
        ("due_date=", f"due_date={d}"),
        *dues,
        *nulls,
        ("created_at__gte (30 days)", f"created_at__gte={month_ago}"),
        ("created_at__lte (30 days ago)", f"created_at__lte={month_ago}"),
        ("assigned_to", f"assigned_to={intern_id}"),
        ("search (common word)", "search=invoice"),
        ("search (no match)", "search=zz-no-such-text"),
        *orderings,
        ("status=PENDING&ordering=due_date (bench)", "status=PENDING&ordering=due_date"),
        (
            "status=P,IP&priority=HIGH&ordering=-priority,due_date",
            "status=PENDING,IN_PROGRESS&priority=HIGH&ordering=-priority,due_date",
        ),
        (
            "status=PENDING&due_date__lte&ordering=due_date",
            f"status=PENDING&due_date__lte={soon}&ordering=due_date",
        ),
        ("page=10 (default ordering)", "page=10"),
    ]


LARGE_TABLES = ("task", "task_search", "task_search_title")
"""The tables of one row per task, which no listing statement may read in full."""


def _nodes(plan: dict):
    """The plan's nodes that ran: a plan may hold a branch it never takes (a CASE's
    other side, see creation_count), which reads nothing (``Actual Loops`` 0)."""
    if plan.get("Actual Loops", 1) > 0:
        yield plan
        for child in plan.get("Plans", []):
            yield from _nodes(child)


def explain(conn, statement: str, parameters) -> dict:
    row = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters or None
    ).fetchone()
    result = row[0][0]
    nodes = list(_nodes(result["Plan"]))
    scans = []
    for node in nodes:
        relation = node.get("Relation Name")
        if not relation:
            continue
        kind = node["Node Type"].replace(" Scan", "")
        if node.get("Parallel Aware"):
            kind = "Parallel " + kind
        index = node.get("Index Name")
        scans.append(f"{relation}:{kind}" + (f"({index})" if index else ""))
    return {
        "ms": result["Execution Time"],
        "scans": scans,
        "seq_scan": any(
            n["Node Type"] == "Seq Scan" and n.get("Relation Name") in LARGE_TABLES for n in nodes
        ),
        "top": result["Plan"]["Node Type"],
    }


def _kind(statement: str) -> str:
    text = statement.lstrip().upper()
    if text.startswith(("SELECT COUNT(", "SELECT (SELECT COUNT(")) or "FROM TASK_COUNTER" in text:
        return "count"
    if "REVOKED_TOKEN" in text:
        return "auth"
    return "page"


def _explain_request(conn, recorder, client, request: tuple, auth: list) -> list[dict]:
    """EXPLAIN of every statement ``request`` (role, shape, URL) sends (the auth one once)."""
    role, label, url = request
    with recorder.recording():
        client.expect(200, role, "GET", url)
    statements = list(recorder.statements)
    rows = []
    for statement, parameters in statements:
        kind = _kind(statement)
        if kind == "auth":
            if not auth:
                auth.append(explain(conn, statement, parameters))
            continue
        row = {
            "role": role,
            "shape": label,
            "statement": "detail" if label == "detail" else kind,
            **explain(conn, statement, parameters),
            "n_statements": len(statements),
        }
        rows.append(row)
    return rows


DEEP_PAGE = 1000


def deep_page_requests(app, conn) -> list[tuple[str, str]]:
    """ADMIN page 1,000 (fewer on a small table) by ``page=`` and by a signed cursor."""
    from itsdangerous import URLSafeSerializer

    from taskapp.web.paging import CURSOR_SALT

    total = conn.execute("SELECT count(*) FROM task").fetchone()[0]
    page = max(2, min(DEEP_PAGE, total // 40))  # a smoke run's table has fewer pages
    offset = (page - 1) * 20
    created_at, task_id = conn.execute(
        "SELECT created_at, id FROM task ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
        [offset - 1],
    ).fetchone()
    signer = URLSafeSerializer(app.config["JWT_SECRET_KEY"], salt=CURSOR_SALT)
    cursor = signer.dumps({"o": "-created_at,-id", "p": [created_at.isoformat(), task_id]})
    return [
        (f"page={page} (page=)", f"/api/tasks/?page={page}"),
        (f"page {page} by cursor", f"/api/tasks/?cursor={cursor}"),
    ]


def run(users: dict, today: date) -> dict:
    """Every shape for both roles (ADMIN also the deep pages), every statement explained."""
    shape_urls = [
        (label, "/api/tasks/?" + query) for label, query in shapes(today, users["intern_id"])
    ]
    shape_urls.append(("detail", f"/api/tasks/{users['intern_task_id']}/"))
    rows, auth = [], []
    with in_process(users) as (client, recorder), connect(autocommit=True) as conn:
        conn.execute("SET jit = off")  # the app's sessions run with the server default too
        deep = deep_page_requests(client.app, conn)
        for role in ("INTERN", "ADMIN"):
            for label, url in shape_urls + (deep if role == "ADMIN" else []):
                rows += _explain_request(conn, recorder, client, (role, label, url), auth)
    failures = [
        f"{r['role']} {r['shape']} {r['statement']}"
        for r in rows
        if r["role"] == "INTERN" and r["seq_scan"]
    ]
    return {"rows": rows, "auth": auth[0], "intern_seq_scan_failures": failures}


def admin_figures(result: dict) -> dict:
    """ADMIN's slowest statement, its sequential scans of task, its common-word search page."""
    admin = [r for r in result["rows"] if r["role"] == "ADMIN"]
    slowest = max(admin, key=lambda r: r["ms"])
    search = [r for r in admin if r["shape"] == "search (common word)" and r["statement"] == "page"]
    return {
        "slowest": (f"{slowest['shape']} ({slowest['statement']})", slowest["ms"]),
        "seq_scans": [f"{r['shape']} ({r['statement']})" for r in admin if r["seq_scan"]],
        "search_page_ms": search[0]["ms"] if search else None,
    }


def report(result: dict) -> str:
    """One line per shape (both roles), then the auth statement and the sequential scans."""
    by = {(r["role"], r["shape"], r["statement"]): r for r in result["rows"]}
    rows = []
    for shape in dict.fromkeys(r["shape"] for r in result["rows"]):
        kinds = ("detail",) if shape == "detail" else ("count", "page")
        cells = [_cell(by.get((role, shape, k))) for role in ("INTERN", "ADMIN") for k in kinds]
        rows.append([shape, *(["", cells[0], "", cells[1]] if shape == "detail" else cells)])
    headers = ["shape", "INTERN count", "INTERN page", "ADMIN count", "ADMIN page"]
    auth, failures = result["auth"], result["intern_seq_scan_failures"]
    admin_seq = admin_figures(result)["seq_scans"]
    return "\n".join(
        [
            "Access to the task table per statement (EXPLAIN ANALYZE execution time): IOS "
            "index-only scan, IS index scan, bitmap bitmap heap scan, SEQ sequential scan, par "
            "parallel; index names without ix_task_; counter: a count summed from task_counter; "
            "search, titles: read from task_search, task_search_title.",
            "",
            table(rows, headers),
            f"\nauth statement (every request): {auth['ms']:.2f} ms, {', '.join(auth['scans'])}",
            "INTERN list/detail without a sequential scan of task or its search tables: "
            + ("PASS" if not failures else "FAIL: " + "; ".join(failures)),
            "ADMIN shapes with a sequential scan of task or its search tables: "
            + ("; ".join(admin_seq) or "none"),
        ]
    )


SIDE_TABLES = {"task_counter": "counter ", "task_search": "search ", "task_search_title": "titles "}
"""The tables a listing reads besides task, and how a cell names them."""
ABBREVIATIONS = {"Index Only": "IOS", "Index": "IS", "Bitmap Heap": "bitmap", "Seq": "SEQ"}


def _cell(row: dict | None) -> str:
    if row is None:
        return ""
    scans = []
    for scan in dict.fromkeys(row["scans"]):
        relation, _, rest = scan.partition(":")
        if relation not in SIDE_TABLES and relation != "task":
            continue
        kind, _, index = rest.partition("(")
        index = index.rstrip(")").removeprefix(f"ix_{relation}_")
        if relation in SIDE_TABLES:
            index = index.replace(f"pk_{relation}", "pk")
        prefix = SIDE_TABLES.get(relation, "")
        if kind.startswith("Parallel "):
            prefix, kind = prefix + "par ", kind.removeprefix("Parallel ")
        scans.append(prefix + ABBREVIATIONS.get(kind, kind) + (f" {index}" if index else ""))
    return f"{row['ms']:.1f} ms {'+'.join(scans)}"
