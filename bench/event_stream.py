"""Event streams at scale: 1,000 concurrent streams on one host, the API's p99 beside
them, and commit-to-event latency, on PostgreSQL + Redis and in the embedded mode.

    python -m bench.event_stream [--streams 1000] [--server gevent|granian] [--embedded]

PostgreSQL + Redis (default): the bench database of bench/changes_feed.py
(``taskapp_bench_live``, 1M tasks), the API as production runs it (gunicorn -c
gunicorn.conf.py, 2 workers), the stream service beside it (``--server gevent``: gunicorn
-c deploy/stream.gunicorn.conf.py; ``--server granian``: granian's WSGI interface with
one blocking thread per stream, the same app unchanged), Redis for wake-ups.

1. baseline: the API's latency (GET /api/tasks/{id}/, 4 clients in a closed loop) with
   the stream service up and no stream;
2. the same with ``--streams`` streams open (one asyncio client process holds them all)
   while a writer creates a task every 0.5 s: the API's p99 against the baseline's
   (target: within 1.5x), the stream service's RSS;
3. commit-to-event: the writer stamps each task's title with the time it sent the POST
   (before the commit: the figure is an upper bound); every stream records when the event
   arrived. Targets: median < 0.5 s, p99 < 2 s, over every (stream, event).

``--embedded``: SQLite, no Redis, the development server (``flask run``, what scripts/run
starts) serving the API and the streams; 20 streams (a thread each there), latency only.

Every target is printed with "met" or "MISSED"; nothing is asserted.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import ROOT, VENV_BIN, app_env, use_database

DATABASE = "taskapp_bench_live"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
API_CLIENTS = 4
OPEN_EVERY = 0.01
"""The client opens its streams 100 a second (1,000 in 10 s)."""
WRITE_EVERY = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "w")  # noqa: SIM115 (the process owns it)
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_up(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{base} did not come up")


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (KiB)."""
    total = 0
    pids = [pid] + [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


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

    threads = [threading.Thread(target=client) for _ in range(API_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def writer(base: str, headers: dict, count: int, every: float) -> None:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for _ in range(count):
            sent = time.time()
            response = http.post("/api/tasks/", json={"title": f"bench-stream {sent:.6f}"})
            assert response.status_code == 201, response.text
            time.sleep(every)


# --- the stream client: its own process, asyncio, many streams -----------------------


async def hold_streams(url: str, headers: dict, n: int, seconds: float, out: Path) -> None:
    """Hold ``n`` streams on raw asyncio connections (an HTTP client library costs more
    CPU per event than the server under test, on the same two cores); an event's latency
    is read from the title of a ``task.created`` in its ``data:`` line."""
    from urllib.parse import urlsplit

    latencies: list[float] = []
    opened = 0
    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "Accept: text/event-stream\r\n\r\n"
    ).encode()

    async def one():
        nonlocal opened
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**20)
        writer.write(request)
        status = await reader.readline()
        opened += b" 200 " in status
        while line := await reader.readline():
            if line.startswith(b"data: ") and b'"type":"task.created"' in line:
                received = time.time()
                title = json.loads(line[6:])["data"]["task"]["title"]
                if title.startswith("bench-stream "):
                    latencies.append(received - float(title.split()[1]))

    tasks = []
    for _ in range(n):
        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(OPEN_EVERY)
    await asyncio.sleep(seconds)
    out.write_text(json.dumps({"opened": opened, "latencies": latencies}))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def client_process(url: str, token: str, n: int, seconds: float, out: Path) -> subprocess.Popen:
    code = (
        "import asyncio; from pathlib import Path; from bench.event_stream import hold_streams;"
        f"asyncio.run(hold_streams({url!r}, {{'Authorization': 'Bearer {token}'}}, {n}, {seconds},"
        f" Path({str(out)!r})))"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)


def wait_opened(out_hint: str, base: str, n: int) -> None:
    """Give the client time to open its streams (it reports at the end)."""
    time.sleep(5 + n * OPEN_EVERY)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def login_token(env: dict, username_role: str) -> tuple[str, int]:
    """A JWT for the first user of a role, minted in this process (no password hash)."""
    os.environ.update(env)
    from taskapp import create_app
    from taskapp.auth.tokens import issue_tokens
    from taskapp.extensions import db
    from taskapp.tasks.models import Task
    from taskapp.users.models import User

    app = create_app({"RATELIMIT_STORAGE_URI": "memory://"})
    with app.app_context():
        user = db.session.execute(
            db.select(User).where(User.role == username_role).order_by(User.id).limit(1)
        ).scalar_one()
        task_id = db.session.execute(
            db.select(Task.id).where(Task.assigned_to_id == user.id).limit(1)
        ).scalar()
        token = issue_tokens(user)["access"]
        db.session.remove()
        db.engine.dispose()
    return token, task_id


def server_argv(server: str, port: int, streams: int, config: str) -> list[str]:
    """The API (``config`` gunicorn.conf.py) or the stream service on ``port``."""
    if server == "gevent" or config == "gunicorn.conf.py":
        config = config if config == "gunicorn.conf.py" else "deploy/stream.gunicorn.conf.py"
        gunicorn = [str(VENV_BIN / "gunicorn"), "-c", config, "-b", f"127.0.0.1:{port}"]
        return [*gunicorn, "--access-logfile", "/dev/null", "wsgi:app"]
    granian = [str(VENV_BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1"]
    threads = ["--workers", "1", "--blocking-threads", str(streams + 20), "--no-ws"]
    return [*granian, "--port", str(port), *threads, "wsgi:app"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far."""
    total = 0.0
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    for each in [pid, *map(int, children.stdout.split())]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def run_postgresql(args) -> None:
    use_database(DATABASE)
    workdir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    env = app_env(REDIS_URL=REDIS_URL, EVENTS_POLL_SECONDS="1", WEB_CONCURRENCY="2")
    token, task_id = login_token(env, "ADMIN")
    api_port, stream_port = free_port(), free_port()
    api_argv = server_argv("gevent", api_port, 0, "gunicorn.conf.py")
    api = start(api_argv, env, workdir / "api.log")
    stream_argv = server_argv(args.server, stream_port, args.streams, "stream")
    streams = start(stream_argv, {**env, "DB_POOL_SIZE": "20"}, workdir / "stream.log")
    try:
        figures = measure(args, token, task_id, api_port, stream_port, streams.pid, workdir)
    finally:
        stop(streams)
        stop(api)
    report(args, *figures)


def measure(args, token, task_id, api_port, stream_port, stream_pid, workdir):
    headers = {"Authorization": f"Bearer {token}"}
    api_base, stream_base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{stream_port}"
    wait_up(api_base)
    wait_up(stream_base)
    api_latencies(api_base, headers, task_id, 3)  # warm up
    rss_idle = rss_kib(stream_pid)
    baseline = api_latencies(api_base, headers, task_id, args.seconds)
    out = workdir / "client.json"
    hold = args.seconds * 2 + 20
    client = client_process(stream_base + "/api/events/", token, args.streams, hold, out)
    wait_opened("", stream_base, args.streams)
    rss_busy, cpu_before = rss_kib(stream_pid), cpu_seconds(stream_pid)
    writes = int(args.seconds * 2 / WRITE_EVERY)
    write_thread = threading.Thread(target=writer, args=(api_base, headers, writes, WRITE_EVERY))
    write_thread.start()
    loaded = api_latencies(api_base, headers, task_id, args.seconds)
    write_thread.join()
    cpu = cpu_seconds(stream_pid) - cpu_before
    client.wait(hold + 60)
    result = json.loads(out.read_text())
    return baseline, loaded, result, writes, rss_idle, rss_busy, cpu


def report(args, baseline, loaded, result, writes, rss_idle, rss_busy, cpu) -> None:
    lat = result["latencies"]
    base99, load99 = p(baseline, 0.99), p(loaded, 0.99)
    print(f"stream server: {args.server}; streams asked {args.streams}, opened {result['opened']}")
    print(
        f"  stream service RSS: idle {rss_idle / 1024:.0f} MiB,"
        f" with streams {rss_busy / 1024:.0f} MiB"
    )
    print(
        f"  API GET one task, no streams:   median {statistics.median(baseline) * 1000:6.1f} ms"
        f"  p99 {base99 * 1000:6.1f} ms  ({len(baseline)} requests)"
    )
    print(
        f"  API GET one task, with streams: median {statistics.median(loaded) * 1000:6.1f} ms"
        f"  p99 {load99 * 1000:6.1f} ms  ({len(loaded)} requests)"
    )
    print(f"  events received {len(lat)} of {writes * args.streams} expected")
    if lat:
        per_event = cpu / len(lat) * 1e6
        print(f"  stream service CPU while writing: {cpu:.1f} s, {per_event:.0f} us per event sent")
    if lat:
        print(
            f"  commit-to-event: median {statistics.median(lat) * 1000:.0f} ms,"
            f" p99 {p(lat, 0.99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms"
        )
    print(f"  target {args.streams} streams held: {verdict(result['opened'] >= args.streams)}")
    print(
        f"  target API p99 within 1.5x: {verdict(load99 <= 1.5 * base99)} ({load99 / base99:.2f}x)"
    )
    if lat:
        print(f"  target median < 0.5 s: {verdict(statistics.median(lat) < 0.5)}")
        print(f"  target p99 < 2 s: {verdict(p(lat, 0.99) < 2)}")
    print(f"  target every event delivered: {verdict(len(lat) == writes * args.streams)}")


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
    port = free_port()
    server = start([flask, "run", "--port", str(port)], env, workdir / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base)
        out = workdir / "client.json"
        hold = args.seconds + 15
        client = client_process(base + "/api/events/", token, args.streams, hold, out)
        wait_opened("", base, args.streams)
        writes = int(args.seconds / WRITE_EVERY)
        writer(base, {"Authorization": f"Bearer {token}"}, writes, WRITE_EVERY)
        client.wait(hold + 60)
        result = json.loads(out.read_text())
    finally:
        stop(server)
    lat = result["latencies"]
    print(
        f"embedded (SQLite, flask run, no Redis): streams {result['opened']}, "
        f"events {len(lat)} of {writes * args.streams}"
    )
    if lat:
        print(
            f"  commit-to-event: median {statistics.median(lat) * 1000:.0f} ms,"
            f" p99 {p(lat, 0.99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms"
        )
        print(f"  target median < 0.5 s: {verdict(statistics.median(lat) < 0.5)}")
        print(f"  target p99 < 2 s: {verdict(p(lat, 0.99) < 2)}")
    print(f"  target every event delivered: {verdict(len(lat) == writes * args.streams)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=None)
    parser.add_argument("--server", choices=["gevent", "granian"], default="gevent")
    parser.add_argument("--seconds", type=float, default=15)
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
