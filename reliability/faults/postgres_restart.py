"""Fault: PostgreSQL restarted under the running app.

gunicorn (2 sync workers) serves steady traffic from a few client threads (task list,
create, get, stats, /api/auth/me/, a login now and then, /healthz) while the script
restarts its private PostgreSQL twice: ``pg_ctl stop -m fast`` (sessions terminated,
clean shutdown) and ``pg_ctl stop -m immediate`` (a crash: recovery on start), each
time leaving the database down for a few seconds.

Requests are sorted by when they ran:

- before: every one succeeds;
- outage (started after the stop finished, ended before the start began): every API
  answer is 503 with exactly ``{"detail": "Service temporarily unavailable; ..."}`` and
  ``Retry-After``; /healthz is 503 ``{"status": "unavailable", ...}``;
- transition (overlapping the stop or the start): 503 or success, nothing else;
- after the start: the app recovers by itself (no restart of gunicorn): the time to the
  first success is measured, and every request from 1 s after the start on succeeds.

Never a 500, never a dropped connection, never a trace in a body. Finally every POST
answered 201 has its task and exactly one CREATED entry, and a task exists without a
201 only for a POST that was cut off by the stop (its commit raced the shutdown).
"""

import threading
import time
from dataclasses import dataclass

from reliability.faults.checks import (
    ADMIN,
    DETAIL_503,
    PASSWORD,
    Answer,
    Client,
    Report,
    codes,
    fmt_codes,
)
from reliability.infra import Stack

NAME = "postgres-restart"
THREADS = 4
OUTAGE_SECONDS = 5.0
SETTLE_SECONDS = 6.0
ROUNDS = ("fast", "immediate")
PHASES = ("outage", "transition", "after")


@dataclass
class Sample:
    kind: str
    started: float
    ended: float
    answer: Answer
    title: str = ""


@dataclass
class Round:
    mode: str
    stop_begin: float = 0.0
    stop_end: float = 0.0
    start_begin: float = 0.0
    start_end: float = 0.0


def run(report: Report, *, pg_port: int, redis_port: int, http_port: int, keep: bool) -> None:
    with Stack("faults-pg", pg_port=pg_port, redis_port=redis_port, keep=keep) as stack:
        stack.migrate()
        stack.create_user(ADMIN, PASSWORD, "ADMIN")
        gunicorn = stack.gunicorn(http_port, workers=2)
        base = f"http://127.0.0.1:{http_port}"
        _scenario(report, stack, base, gunicorn)


def _next_request(n: int, index: int, token: str, task_id: int) -> tuple:
    """Thread ``index``'s ``n``-th request: (kind, call args, call kwargs, task title)."""
    step = (n + index) % 7
    if step == 0:
        return "list", ("GET", "/api/tasks/?page_size=5&ordering=-created_at", token), {}, ""
    if step == 1:
        title = f"pgr-{index}-{n}"
        return "create", ("POST", "/api/tasks/", token), {"json": {"title": title}}, title
    if step == 2:
        return "get", ("GET", f"/api/tasks/{task_id}/", token), {}, ""
    if step == 3:
        return "stats", ("GET", "/api/tasks/stats/", token), {}, ""
    if step == 4:
        return "me", ("GET", "/api/auth/me/", token), {}, ""
    if step == 5 and index == 0 and n % 5 == 0:
        body = {"json": {"username": ADMIN, "password": PASSWORD}}
        return "login", ("POST", "/api/auth/login/"), body, ""
    return "healthz", ("GET", "/healthz"), {}, ""


def _traffic(base: str, token: str, task_id: int, index: int, stop: threading.Event, out: list):
    client = Client(base, timeout=15)
    n = 0
    try:
        while not stop.is_set():
            n += 1
            kind, args, kwargs, title = _next_request(n, index, token, task_id)
            started = time.monotonic()
            answer = client.call(*args, **kwargs)
            out.append(Sample(kind, started, time.monotonic(), answer, title))
            stop.wait(0.05)
    finally:
        client.close()


def _good(sample: Sample) -> bool:
    return 200 <= sample.answer.status < 300


def _contract_503(sample: Sample) -> bool:
    answer = sample.answer
    if answer.status != 503:
        return False
    if sample.kind == "healthz":
        return answer.get("status") == "unavailable" and answer.get("database") == "unreachable"
    return (
        answer.detail_only
        and answer.body["detail"] == DETAIL_503
        and bool(answer.headers.get("retry-after"))
    )


def _scenario(report: Report, stack: Stack, base: str, gunicorn) -> None:
    token, task_id = _fixture(base)
    t0 = time.monotonic()
    samples, rounds = _traffic_through_restarts(report, stack, base, token, task_id)
    report.info(
        NAME,
        f"{len(samples)} requests from {THREADS} threads over "
        f"{time.monotonic() - t0:.0f} s: {fmt_codes(codes(s.answer for s in samples))}",
    )
    phases = _phases(samples, rounds)
    before = phases.get(("before", None), [])
    report.check(
        NAME,
        "before the first stop every request succeeds",
        before and all(_good(s) for s in before),
        f"{len(before)} requests: {fmt_codes(codes(s.answer for s in before))}",
    )
    for i, rnd in enumerate(rounds):
        _check_round(report, rnd, *(phases.get((k, i), []) for k in PHASES))
    _check_no_server_errors(report, samples)
    _check_writes(report, stack, samples)
    log = gunicorn.log_text()
    report.info(
        NAME,
        f"gunicorn log: {log.count('Traceback')} logged traceback(s) (server side only), "
        f"{log.count('Booting worker')} worker boot(s) in all (2 at start: no worker died)",
    )


def _fixture(base: str) -> tuple[str, int]:
    """An access token and a task to read."""
    client = Client(base)
    try:
        token = client.login().body["access"]
        task = client.call("POST", "/api/tasks/", token, json={"title": "pgr-fixture"})
        return token, task.body["id"]
    finally:
        client.close()


def _restart(report: Report, stack: Stack, mode: str) -> Round:
    """Stop PostgreSQL (``mode``), leave it down OUTAGE_SECONDS, start it; the timings."""
    rnd = Round(mode)
    rnd.stop_begin = time.monotonic()
    stack.pg.stop(mode)
    rnd.stop_end = time.monotonic()
    time.sleep(OUTAGE_SECONDS)
    rnd.start_begin = time.monotonic()
    stack.pg.start()
    rnd.start_end = time.monotonic()
    report.info(
        NAME,
        f"round {mode}: stop took {rnd.stop_end - rnd.stop_begin:.2f} s, database down "
        f"{rnd.start_end - rnd.stop_begin:.1f} s in all, start took "
        f"{rnd.start_end - rnd.start_begin:.2f} s",
    )
    return rnd


def _traffic_through_restarts(
    report: Report, stack: Stack, base: str, token: str, task_id: int
) -> tuple[list[Sample], list[Round]]:
    """THREADS client threads send traffic while PostgreSQL restarts once per ROUNDS mode;
    every request (sorted by start) and the rounds' timings."""
    samples: list[Sample] = []
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_traffic, args=(base, token, task_id, i, stop, samples), daemon=True
        )
        for i in range(THREADS)
    ]
    rounds: list[Round] = []
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        for mode in ROUNDS:
            rounds.append(_restart(report, stack, mode))
            time.sleep(SETTLE_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    samples.sort(key=lambda s: s.started)
    return samples, rounds


def _phase(sample: Sample, rounds: list[Round]) -> tuple:
    """Before the first stop, or the outage / transition / after phase of one round
    ("after" of a round is "before" of the next)."""
    key: tuple = ("before", None)
    for i, rnd in enumerate(rounds):
        if sample.ended < rnd.stop_begin:
            break
        if sample.started < rnd.start_end:
            outage = sample.started >= rnd.stop_end and sample.ended <= rnd.start_begin
            return ("outage" if outage else "transition", i)
        key = ("after", i)
    return key


def _phases(samples: list[Sample], rounds: list[Round]) -> dict[tuple, list[Sample]]:
    phases: dict[tuple, list[Sample]] = {}
    for sample in samples:
        phases.setdefault(_phase(sample, rounds), []).append(sample)
    return phases


def _odd(samples: list[Sample]) -> str:
    if not samples:
        return ""
    first = samples[0]
    return f"; first odd one: {first.kind} {first.answer.status} {str(first.answer.body)[:200]}"


def _check_round(report: Report, rnd: Round, outage, transition, after) -> None:
    label = f"{rnd.mode} restart"
    bad_outage = [s for s in outage if not _contract_503(s)]
    kinds = sorted({s.kind for s in outage})
    report.check(
        NAME,
        f"{label}: during the outage every request gets 503 with the contract's body",
        outage and not bad_outage,
        f"{len(outage)} requests: {fmt_codes(codes(s.answer for s in outage))}; "
        f"{len(outage) - len(bad_outage)} contract 503s; by kind: "
        + ", ".join(f"{k} {sum(1 for s in outage if s.kind == k)}" for k in kinds)
        + _odd(bad_outage),
    )
    bad_transition = [s for s in transition if not (_good(s) or _contract_503(s))]
    report.check(
        NAME,
        f"{label}: requests overlapping the stop/start get success or the contract's 503",
        not bad_transition,
        f"{len(transition)} requests: {fmt_codes(codes(s.answer for s in transition))}"
        + _odd(bad_transition),
    )
    _check_recovery(report, rnd, label, after)


def _check_recovery(report: Report, rnd: Round, label: str, after: list[Sample]) -> None:
    first_ok = next((s for s in after if _good(s)), None)
    settled = [s for s in after if s.started >= rnd.start_end + 1.0]
    first = (
        f"first success {first_ok.ended - rnd.start_end:.2f} s after PostgreSQL was up "
        f"({first_ok.ended - rnd.stop_begin:.1f} s after the stop began); "
        if first_ok
        else ""
    )
    report.check(
        NAME,
        f"{label}: the app recovers by itself",
        first_ok is not None and settled and all(_good(s) for s in settled),
        first
        + f"{len(after)} requests after the start: {fmt_codes(codes(s.answer for s in after))}",
    )


def _check_no_server_errors(report: Report, samples: list[Sample]) -> None:
    server_errors = [
        s
        for s in samples
        if s.answer.status == 0 or (s.answer.status >= 500 and not _contract_503(s))
    ]
    first = ""
    if server_errors:
        odd = server_errors[0]
        first = (
            f" (first: {odd.kind} {odd.answer.status} "
            f"{odd.answer.error or str(odd.answer.body)[:200]})"
        )
    report.check(
        NAME,
        "no 500, no dropped connection, no trace in any body, every body JSON",
        not server_errors
        and all(s.answer.is_json for s in samples)
        and not any("Traceback" in str(s.answer.body) for s in samples),
        f"{len(samples)} requests; odd answers: {len(server_errors)}{first}",
    )


def _check_writes(report: Report, stack: Stack, samples: list[Sample]) -> None:
    """Nothing lost, nothing extra (beyond a commit that raced the shutdown)."""
    created_ok = {s.title for s in samples if s.kind == "create" and s.answer.status == 201}
    created_cut = {s.title for s in samples if s.kind == "create" and s.answer.status != 201}
    with stack.pg.connect(stack.database) as conn:
        in_db = {
            row[0] for row in conn.execute("SELECT title FROM task WHERE title LIKE 'pgr-%-%'")
        }
        entries = dict(
            conn.execute(
                "SELECT task_title, count(*) FROM activity_log WHERE action = 'CREATED' "
                "AND task_title LIKE 'pgr-%-%' GROUP BY task_title"
            ).fetchall()
        )
    lost = created_ok - in_db
    extra = in_db - created_ok
    unexplained = extra - created_cut
    report.check(
        NAME,
        "every 201 has its task and exactly one CREATED entry; nothing extra",
        not lost and not unexplained and set(entries) == in_db and set(entries.values()) <= {1},
        f"POST 201: {len(created_ok)}, POST not 201: {len(created_cut)}, tasks in the database: "
        f"{len(in_db)}, CREATED entries: {sum(entries.values())}; lost: {len(lost)}; "
        f"committed although the answer was 503 (commit raced the shutdown): {len(extra)}",
    )
