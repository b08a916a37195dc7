"""What each piece of taskapp's per-request plumbing costs, in-process; bench/README.md,
"The plumbing, piece by piece".

The detail GET is served, as a WSGI app called in this process (no HTTP server, CPU time of
this process), by: ladder step ``detail``, taskapp, the step inside all of taskapp's plumbing
(``ladder_app.plumbed_app``), and that plumbed step without one piece at a time. Rounds are
interleaved, in an order shuffled afresh each round (seeded by the round's number, so a run can
be repeated), so that no contender always runs in the same place or after the same one; a
piece's price is the median over the rounds of (plumbed step) minus (plumbed step
without it) in the same round, so the machine's drift between minutes cancels out. What no
single piece accounts for (the plumbing minus the sum of the pieces) is printed as such.
"""

import io
import logging
import random
import statistics
import time
from contextlib import contextmanager

from bench.common import RESULTS_DIR, login, table, use_app_env
from bench.inprocess import make_app

LEADS = ("bare step", "taskapp", "plumbed step")


def _caller(wsgi_app, path: str, token: str, step: str | None = None):
    """A function that makes one GET of ``path`` through ``wsgi_app`` and checks its 200
    (``step``: the ladder's, picked by its header)."""
    from werkzeug.test import EnvironBuilder

    headers = {"Authorization": f"Bearer {token}", "Host": "localhost"}
    if step:
        headers["X-Ladder"] = step
    builder = EnvironBuilder(path=path, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    environ = builder.get_environ()

    def call() -> None:
        status = []
        body = wsgi_app(
            {**environ, "wsgi.input": io.BytesIO()}, lambda s, h, e=None: status.append(s)
        )
        try:
            b"".join(body)
        finally:
            body.close()
        if not status[0].startswith("200"):
            raise RuntimeError(f"{path}: {status[0]}")

    return call


def apps() -> dict:
    """Each contender's app: taskapp, the ladder (bare step), the plumbed step, and the
    plumbed step without each piece."""
    use_app_env()
    from bench import ladder_app

    found = {"bare step": ladder_app.app, "taskapp": make_app()}
    found["plumbed step"] = ladder_app.plumbed_app()
    for piece in ladder_app.PIECES:
        found[f"without {piece}"] = ladder_app.plumbed_app(without=frozenset({piece}))
    return found


def callers(found: dict, users: dict) -> dict:
    """The detail GET through each contender (see the module's docstring)."""
    token = login(found["taskapp"].test_client(), users["intern"])
    path = f"/api/tasks/{users['intern_task_id']}/"
    plumbed_path = "/detail_plumbed" + path  # what the ladder's router would pass on
    calls = {
        "bare step": _caller(found["bare step"], path, token, "detail"),
        "taskapp": _caller(found["taskapp"], path, token),
    }
    for name, app in found.items():
        if name not in calls:
            calls[name] = _caller(app, plumbed_path, token)
    return calls


def _dispose(found: dict) -> None:
    """Close the contenders' pooled connections (each plumbed app has an engine)."""
    from taskapp.extensions import db

    with found["taskapp"].app_context():
        db.engine.dispose()
    for name, app in found.items():
        if name not in ("bare step", "taskapp"):
            app.extensions["ladder_engine"].dispose()


@contextmanager
def _log_to_file():
    """The process's log lines (the access lines among them) into a file, as gunicorn's
    workers write theirs, instead of the terminal."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    with open(RESULTS_DIR / "plumbing-log.txt", "w") as file:
        streams = [h.setStream(file) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream)


def run(users: dict, rounds: int, requests: int) -> dict:
    """``rounds`` interleaved rounds of ``requests`` calls each: CPU ms per request."""
    found = apps()
    try:
        calls = callers(found, users)
        with _log_to_file():
            ms = _rounds(calls, rounds, requests)
    finally:
        _dispose(found)
    result = {"ms": ms, "rounds": rounds, "requests": requests}
    return {**result, "figures": figures(result)}


def _rounds(calls: dict, rounds: int, requests: int) -> dict[str, list[float]]:
    ms: dict[str, list[float]] = {name: [] for name in calls}
    for number in range(rounds):
        names = list(calls)
        random.Random(number).shuffle(names)
        for name in names:
            call = calls[name]
            call()
            started = time.process_time()
            for _ in range(requests):
                call()
            ms[name].append((time.process_time() - started) * 1000 / requests)
    return ms


def _paired(ms: dict, high: str, low: str) -> float:
    return statistics.median(a - b for a, b in zip(ms[high], ms[low], strict=True))


def _paired_ratio(ms: dict, high: str, low: str) -> float:
    return statistics.median(a / b for a, b in zip(ms[high], ms[low], strict=True))


def figures(result: dict) -> dict:
    """Medians, the plumbing's price, each piece's, and the in-process ratios."""
    from bench.ladder_app import NESTED, PIECES

    ms = result["ms"]
    plumbing = _paired(ms, "plumbed step", "bare step")
    pieces = {piece: _paired(ms, "plumbed step", f"without {piece}") for piece in PIECES}
    return {
        "median": {name: statistics.median(values) for name, values in ms.items()},
        "plumbing_ms": plumbing,
        "pieces": pieces,
        "in_no_piece_ms": plumbing - sum(v for k, v in pieces.items() if k not in NESTED),
        "taskapp_over_step": _paired_ratio(ms, "taskapp", "bare step"),
        "taskapp_over_plumbed": _paired_ratio(ms, "taskapp", "plumbed step"),
    }


def report(result: dict) -> str:
    from bench.ladder_app import PIECES

    f = result["figures"]
    leads = [[name, f"{f['median'][name]:.3f}", ""] for name in LEADS]
    plumbing = f["plumbing_ms"]
    rows = [
        [PIECES[piece], f"{price:+.3f}", f"{price / plumbing:.0%}" if plumbing > 0 else ""]
        for piece, price in sorted(f["pieces"].items(), key=lambda item: -item[1])
    ]
    return "\n".join(
        [
            f"Detail GET in-process, CPU ms per request, medians of {result['rounds']} "
            f"interleaved rounds of {result['requests']} requests.",
            "",
            table(leads, ["contender", "ms/request", ""]),
            "",
            f"taskapp / bare step: {f['taskapp_over_step']:.2f}x; taskapp / plumbed step: "
            f"{f['taskapp_over_plumbed']:.2f}x; the plumbing: {plumbing:+.3f} ms a request",
            "",
            table(rows, ["piece (removed alone)", "ms/request (paired)", "of the plumbing"]),
            "",
            f"in no single piece (the plumbing minus the pieces, the access line counted in "
            f"the middleware's): {f['in_no_piece_ms']:+.3f} ms",
        ]
    )
