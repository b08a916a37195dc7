"""Where a request's time goes under load: py-spy of the gunicorn workers (bench/README.md)."""

import collections
import os
import subprocess
import threading
import time
from pathlib import Path

from bench.common import RESULTS_DIR, VENV_BIN, app_env
from bench.http_bench import APP, Server, cleanup_writes, list_etag, prepare, wrk

GROUPS = [
    ("taskapp", "(taskapp/"),
    ("sqlalchemy", "(sqlalchemy/"),
    ("psycopg", "(psycopg/"),
    ("marshmallow", "(marshmallow/"),
    ("flask_smorest+webargs", ("(flask_smorest/", "(webargs/")),
    ("jwt", ("(flask_jwt_extended/", "(jwt/")),
    ("flask+werkzeug", ("(flask/", "(werkzeug/")),
    ("gunicorn", "(gunicorn/"),
]


def _group(frame: str) -> str:
    for name, needles in GROUPS:
        needles = (needles,) if isinstance(needles, str) else needles
        if any(n in frame for n in needles):
            return name
    return "other"


def _stacks(collapsed_file):
    """(frames, samples) of every stack py-spy recorded, idle ones left out, and the
    rare stack whose frame name spans lines (SQL text in a frame's name) skipped: its
    pieces do not end in a sample count."""
    for line in Path(collapsed_file).read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit() and "idle" not in stack.rsplit(";", 1)[-1]:
            yield stack.split(";"), int(count)


def analyse(collapsed_file, top: int = 40) -> dict:
    """Self time by library, and the frames with the largest inclusive share."""
    inclusive, groups, total = collections.Counter(), collections.Counter(), 0
    for frames, n in _stacks(collapsed_file):
        total += n
        inclusive.update(dict.fromkeys(set(frames), n))
        groups[_group(frames[-1])] += n
    return {
        "samples": total,
        "self_by_library": {k: round(v / max(1, total), 3) for k, v in groups.most_common()},
        "inclusive": [(f, round(n / max(1, total), 3)) for f, n in inclusive.most_common(top)],
    }


def _trie(collapsed_file, root: str) -> tuple[dict, int]:
    """{frame: [samples, children]} of the stacks below ``root``, and all samples."""
    trie: dict = {}
    total = 0
    for frames, n in _stacks(collapsed_file):
        total += n
        node = trie
        for frame in next((frames[i:] for i, f in enumerate(frames) if f.startswith(root)), []):
            entry = node.setdefault(frame, [0, {}])
            entry[0] += n
            node = entry[1]
    return trie, total


def tree(collapsed_file, root: str = "Flask.wsgi_app", min_share: float = 0.015) -> str:
    """The call tree below ``root``, each node's share of all samples (>= ``min_share``)."""
    trie, total = _trie(collapsed_file, root)
    lines = []

    def walk(node, depth):
        for frame, (n, children) in sorted(node.items(), key=lambda kv: -kv[1][0]):
            if n / total < min_share:
                continue
            lines.append(f"{n / total:6.1%} {'  ' * depth}{frame[:140]}")
            walk(children, depth + 1)

    walk(trie, 0)
    return "\n".join(lines)


def record(pid: int, seconds: int, path: Path) -> subprocess.Popen:
    """py-spy sampling one worker for ``seconds`` (GIL holders only), raw collapsed stacks."""
    argv = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(seconds)]
    argv += ["--rate", "200", "--format", "raw", "--output", str(path), "--nonblocking", "--gil"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_under_load(server: Server, scenario: str, seconds: int, url: str, env: dict):
    """wrk drives ``url`` while py-spy samples every worker; (per-worker files, wrk result)."""
    wrk(url, 2, 8, **env)  # warm-up
    result: dict = {}
    load = threading.Thread(target=lambda: result.update(wrk(url, seconds + 4, 8, **env)))
    load.start()
    time.sleep(2)
    pids = [pid for pid in server.pids() if pid != server.proc.pid]
    files = [RESULTS_DIR / f"pyspy-{scenario}-{pid}.txt" for pid in pids]
    spies = [record(pid, seconds, path) for pid, path in zip(pids, files, strict=True)]
    for spy in spies:
        spy.wait(timeout=seconds + 60)
    load.join(timeout=seconds + 90)
    return files, result


def merge(files: list[Path], merged: Path) -> None:
    with open(merged, "w") as out:
        for path in files:
            if path.exists():
                out.write(path.read_text())
                os.unlink(path)


def run(users: dict, scenario: str, seconds: int) -> dict:
    """Profile ``scenario`` (the app as ``wsgi:app``, under wrk) for the ``bench_users()``."""
    try:
        with Server("gunicorn", "wsgi:app", app_env(), "profile") as server:
            server.wait_ready("/healthz")
            path, env = prepare(server.base, users)["kinds"][APP[scenario][1]]
            if scenario == "intern_list_304":
                env = {**env, "BENCH_IF_NONE_MATCH": list_etag(server.base, env["BENCH_TOKEN"])}
            url = server.base + path
            files, result = profile_under_load(server, scenario, seconds, url, env)
    finally:
        cleanup_writes(users["max_task_id"])
    merged = RESULTS_DIR / f"pyspy-{scenario}.txt"
    merge(files, merged)
    analysis = analyse(merged)
    analysis["load"] = {k: result.get(k) for k in ("rps", "p50_ms", "p99_ms", "errors")}
    return analysis
