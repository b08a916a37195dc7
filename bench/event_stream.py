"""Event streams at scale: 1,000 streams on one host, the API's p99 beside them, and
commit-to-event latency; bench/README.md, "Live changes"."""

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench import common
from bench.common import ROOT, VENV_BIN, verdict

DATABASE = "taskapp_bench_live"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
API_CLIENTS = 4
OPEN_EVERY = 0.01
"""The client opens its streams 100 a second (1,000 in 10 s)."""
WRITE_EVERY = 0.5


def api_latencies(base: str, headers: dict, task_id: int, seconds: float) -> list[float]:
    times: list[float] = []
    stop_at = time.monotonic() + seconds

    def client():
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                response = http.get(f"/api/tasks/{task_id}/")
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text

    with ThreadPoolExecutor(API_CLIENTS) as pool:
        list(pool.map(lambda _: client(), range(API_CLIENTS)))  # a client's error re-raised
    return times


def writer(base: str, headers: dict, count: int, every: float) -> None:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for _ in range(count):
            sent = time.time()
            response = http.post("/api/tasks/", json={"title": f"bench-stream {sent:.6f}"})
            assert response.status_code == 201, response.text
            time.sleep(every)


LATENCY_EVERY = 10
"""One stream in this many reads its events' latencies; the others only count them."""
CREATED = b"event: task.created\n"


async def hold_streams(url: str, headers: dict, n: int, seconds: float, out: Path) -> None:
    """Hold ``n`` streams on raw asyncio connections, as cheaply as a client can: they
    stand for browsers on other machines, and every bit of CPU they take here is taken
    from the API being measured. Each stream counts its ``task.created`` events; one in
    ``LATENCY_EVERY`` also reads each event's latency from the task's title (the time its
    POST was sent). The client's own CPU time is reported."""
    from urllib.parse import urlsplit

    latencies: list[float] = []
    refused: list[str] = []
    opened = created = 0
    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "Accept: text/event-stream\r\n\r\n"
    ).encode()

    async def one(timed: bool):
        nonlocal opened, created
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**20)
        writer.write(request)
        status = await reader.readline()
        if b" 200 " not in status:
            refused.append(status.decode(errors="replace"))
            return
        opened += 1
        pending = b""
        while chunk := await reader.read(2**16):
            pending += chunk
            complete, _, pending = pending.rpartition(b"\n\n")
            created += complete.count(CREATED)
            if timed and CREATED in complete:
                received = time.time()
                for event in complete.split(b"\n\n"):
                    if CREATED in event:
                        data = event.partition(b"\ndata: ")[2].partition(b"\n")[0]
                        title = json.loads(data)["data"]["task"]["title"]
                        if title.startswith("bench-stream "):
                            latencies.append(received - float(title.split()[1]))

    tasks = []
    for index in range(n):
        tasks.append(asyncio.create_task(one(index % LATENCY_EVERY == 0)))
        await asyncio.sleep(OPEN_EVERY)
    await asyncio.sleep(seconds)
    figures = {"opened": opened, "refused": refused[:5], "created": created}
    figures |= {"latencies": latencies, "client_cpu": time.process_time()}
    out.write_text(json.dumps(figures))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def open_streams(url: str, token: str, n: int, seconds: float, out: Path) -> subprocess.Popen:
    """:func:`hold_streams` in a process of its own, once it has had time to open them."""
    code = (
        "import asyncio; from pathlib import Path; from bench.event_stream import hold_streams;"
        f"asyncio.run(hold_streams({url!r}, {{'Authorization': 'Bearer {token}'}}, {n}, {seconds},"
        f" Path({str(out)!r})))"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    time.sleep(5 + n * OPEN_EVERY)
    return process


def login_token(env: dict, role: str) -> tuple[str, int]:
    """A JWT minted for the first user of ``role``, and one of that user's tasks."""
    os.environ.update(env)
    from taskapp import create_app
    from taskapp.auth.tokens import issue_tokens
    from taskapp.extensions import db
    from taskapp.tasks.models import Task
    from taskapp.users.models import User

    app = create_app({"RATELIMIT_STORAGE_URI": "memory://"})
    with app.app_context():
        user = db.session.execute(
            db.select(User).where(User.role == role).order_by(User.id).limit(1)
        ).scalar_one()
        task_id = db.session.execute(
            db.select(Task.id).where(Task.assigned_to_id == user.id).limit(1)
        ).scalar()
        token = issue_tokens(user)["access"]
        db.session.remove()
        db.engine.dispose()
    return token, task_id


def gunicorn_argv(config: str, port: int) -> list[str]:
    gunicorn = [str(VENV_BIN / "gunicorn"), "-c", config, "-b", f"127.0.0.1:{port}"]
    return [*gunicorn, "--access-logfile", "/dev/null", "wsgi:app"]


def stream_argv(server: str, port: int, streams: int) -> list[str]:
    """The stream service: gevent as deployed, or granian with a thread per stream."""
    if server == "gevent":
        return gunicorn_argv("deploy/stream.gunicorn.conf.py", port)
    granian = [str(VENV_BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1"]
    threads = ["--workers", "1", "--blocking-threads", str(streams + 20), "--no-ws"]
    return [*granian, "--port", str(port), *threads, "wsgi:app"]


def group_total(pid: int, of) -> float:
    """``of`` (``common.proc_cpu``, ``common.proc_kib``) summed over a process group."""
    return sum(of(each) for each in common.group_pids(pid))


def run_postgresql(args) -> None:
    common.use_database(DATABASE)
    workdir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    env = common.app_env(REDIS_URL=REDIS_URL, EVENTS_POLL_SECONDS="1", WEB_CONCURRENCY="2")
    token, task_id = login_token(env, "ADMIN")
    api_port, stream_port = common.free_port(), common.free_port()
    api = common.start(gunicorn_argv("gunicorn.conf.py", api_port), env, workdir / "api.log")
    stream_env = {**env, "DB_POOL_SIZE": "20"}
    streams = common.start(
        stream_argv(args.server, stream_port, args.streams), stream_env, workdir / "s.log"
    )
    try:
        api_base, stream_base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{stream_port}"
        figures = measure(args, token, task_id, (api_base, stream_base), streams.pid, workdir)
    finally:
        common.stop(streams)
        common.stop(api)
    report(args, figures)


def measure(args, token: str, task_id: int, bases: tuple, stream_pid: int, workdir: Path):
    """``args.rounds`` rounds, each: the API's latency without streams, then 1,000 streams
    opened and the API's latency again, then the streams closed. A writer makes a task
    every WRITE_EVERY seconds during both windows: the same API load both times, so the
    streams are the only difference. Interleaving the two windows, and pooling each
    one's requests over the rounds, keeps a drift of the machine's load out of the ratio."""
    headers = {"Authorization": f"Bearer {token}"}
    api_base, stream_base = bases
    common.wait_answering(api_base + "/healthz")
    common.wait_answering(stream_base + "/healthz")
    api_latencies(api_base, headers, task_id, 3)  # warm up
    f = {"rss_idle": group_total(stream_pid, common.proc_kib), "baseline": [], "loaded": []}
    f |= {"rounds": [], "cpu": 0.0}
    writes = int(args.seconds / WRITE_EVERY)
    clients = []

    def window() -> list[float]:
        write = threading.Thread(target=writer, args=(api_base, headers, writes, WRITE_EVERY))
        write.start()
        times = api_latencies(api_base, headers, task_id, args.seconds)
        write.join()
        return times

    for round_number in range(args.rounds):
        baseline = window()
        out, hold = workdir / f"client{round_number}.json", args.seconds + 20
        client = open_streams(stream_base + "/api/events/", token, args.streams, hold, out)
        f["rss_busy"] = group_total(stream_pid, common.proc_kib)
        cpu_before = group_total(stream_pid, common.proc_cpu)
        loaded = window()
        f["cpu"] += group_total(stream_pid, common.proc_cpu) - cpu_before
        client.wait(hold + 60)
        clients.append(json.loads(out.read_text()))
        f["baseline"] += baseline
        f["loaded"] += loaded
        f["rounds"].append(p99_ratio(baseline, loaded))
        print(
            f"  round {round_number + 1}: API p99 with/without streams {f['rounds'][-1]:.2f}x",
            flush=True,
        )
    f["writes"] = writes * args.rounds
    return f | {
        "opened": min(c["opened"] for c in clients),
        "refused": [line for c in clients for line in c["refused"]],
        "created": sum(c["created"] for c in clients),
        "latencies": [x for c in clients for x in c["latencies"]],
        "client_cpu": sum(c["client_cpu"] for c in clients),
    }


def p99_ratio(baseline: list[float], loaded: list[float]) -> float:
    return common.percentile(loaded, 0.99) / common.percentile(baseline, 0.99)


def report(args, f: dict) -> None:
    base99 = common.percentile(f["baseline"], 0.99)
    load99 = common.percentile(f["loaded"], 0.99)
    print(f"stream server: {args.server}; streams asked {args.streams}, opened {f['opened']}")
    if f["refused"]:
        print(f"  refused (first lines): {f['refused']}")
    print(
        f"  stream service RSS: idle {f['rss_idle'] / 1024:.0f} MiB,"
        f" with streams {f['rss_busy'] / 1024:.0f} MiB"
    )
    for name, times in (("no streams:  ", f["baseline"]), ("with streams:", f["loaded"])):
        print(
            f"  API GET one task, {name} median {statistics.median(times) * 1000:6.1f} ms"
            f"  p99 {common.percentile(times, 0.99) * 1000:6.1f} ms  ({len(times)} requests)"
        )
    if f["created"]:
        per_event = f["cpu"] / f["created"] * 1e6
        print(f"  stream service CPU while writing: {f['cpu']:.1f} s, {per_event:.0f} us per event")
    print(f"  the stream client's own CPU (the browsers, elsewhere in production): "
          f"{f['client_cpu']:.1f} s")  # fmt: skip
    print(f"  target {args.streams} streams held: {verdict(f['opened'] >= args.streams)}")
    by_round = ", ".join(f"{r:.2f}x" for r in f["rounds"])
    print(
        f"  target API p99 within 1.5x (requests of {len(f['rounds'])} interleaved rounds"
        f" pooled): {verdict(load99 <= 1.5 * base99)} ({load99 / base99:.2f}x; by round"
        f" {by_round})"
    )
    print_events(f, f["writes"] * args.streams)


def print_events(figures: dict, expected: int) -> None:
    """Commit-to-event figures and their targets (both modes)."""
    latencies = figures["latencies"]
    print(f"  events received {figures['created']} of {expected} expected")
    if latencies:
        lat = {k: v * 1000 for k, v in common.latency_figures(latencies).items()}
        print(
            f"  commit-to-event ({len(latencies)} events on one stream in {LATENCY_EVERY}):"
            f" median {lat['median']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms"
        )
        print(f"  target median < 0.5 s: {verdict(lat['median'] < 500)}")
        print(f"  target p99 < 2 s: {verdict(lat['p99'] < 2000)}")
    print(f"  target every event delivered: {verdict(figures['created'] == expected)}")


def run_embedded(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-stream-embedded-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        TASKAPP_INSTANCE_DIR=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir}/taskapp.sqlite",
        FLASK_APP="wsgi",
    )
    flask = str(VENV_BIN / "flask")
    subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([flask, "demo", "seed"], cwd=ROOT, env=env, check=True, capture_output=True)
    token, _ = login_token(env, "ADMIN")
    port = common.free_port()
    server = common.start([flask, "run", "--port", str(port)], env, workdir / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        common.wait_answering(base + "/healthz", server)
        out, hold = workdir / "client.json", args.seconds + 15
        client = open_streams(base + "/api/events/", token, args.streams, hold, out)
        writes = int(args.seconds / WRITE_EVERY)
        writer(base, {"Authorization": f"Bearer {token}"}, writes, WRITE_EVERY)
        client.wait(hold + 60)
        result = json.loads(out.read_text())
    finally:
        common.stop(server)
    print(f"embedded (SQLite, flask run, no Redis): streams {result['opened']}")
    print_events(result, writes * args.streams)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=None)
    parser.add_argument("--server", choices=["gevent", "granian"], default="gevent")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="PostgreSQL mode")
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.embedded:
        args.streams = args.streams or 20
        run_embedded(args)
    else:
        args.streams = args.streams or 1000
        run_postgresql(args)


if __name__ == "__main__":
    main()
