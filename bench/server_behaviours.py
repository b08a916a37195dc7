"""What a server must keep besides speed (issue 19, step 5): the same probes against gunicorn
as deployed (``gunicorn.conf.py``) and granian (WSGI), on the bench database; bench/README.md,
"The server, by measurement". ``python -m bench.server_behaviours``."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
from contextlib import closing, suppress

import httpx

from bench import common
from bench.common import RESULTS_DIR, ROOT, VENV_BIN, app_env, table
from bench.http_bench import bench_users, cleanup_writes, login

EDGE_COVERS = {"slow_clients"}
"""Behaviours the edge provides whatever the server: nginx reads every request whole
before it passes it on (tests/shared/test_edge.py, slow clients)."""
BEHIND_THE_EDGE = {"TRUSTED_PROXY_COUNT": "1", "FORWARDED_ALLOW_IPS": "127.0.0.1"}
SLOW_CLIENTS = 24
"""Three times the threads of granian's 2 x 4 (gunicorn as deployed: 2 sync workers)."""
WORKERS, THREADS = "2", "4"


def server_argv(kind: str, port: int) -> list[str]:
    """The server as production would run it: gunicorn with the project's config file (its
    sync workers), granian with as many processes, 4 threads each."""
    if kind == "granian":
        return [
            *(str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", WORKERS),
            *("--blocking-threads", THREADS, "--host", "127.0.0.1", "--port", str(port)),
            *("--no-ws", "--log-level", "warning", "wsgi:app"),
        ]
    return [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"]


class Probed:
    """One server under probe: its process, its base URL and an INTERN's bearer header;
    stopped, its whole process group, however the probes end."""

    def __init__(self, kind: str, username: str):
        self.kind = kind
        self.port = common.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = app_env(**BEHIND_THE_EDGE, GUNICORN_BIND=f"127.0.0.1:{self.port}")
        env["WEB_CONCURRENCY"] = WORKERS
        self.log = RESULTS_DIR / f"behaviours-{kind}.log"
        self.proc = common.start(server_argv(kind, self.port), env, self.log)
        try:
            common.wait_answering(self.base + "/healthz", self.proc)
            self.auth = {"Authorization": f"Bearer {login(self.base, username)}"}
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """The master may have exited already (after the graceful-stop probe): its
        workers, if any are left, go with the group."""
        common.stop(self.proc)
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def raw(port: int, data: bytes, timeout: float = 10) -> tuple[int, str, bytes]:
    """Send ``data`` as is; (status, content type, body) of the answer (0 if none). A
    server may answer and close before it has read all of ``data``."""
    with closing(socket.create_connection(("127.0.0.1", port), timeout=timeout)) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return _parse(_read_answer(sock))


def _read_answer(sock: socket.socket) -> bytes:
    """What the server answers, up to its Content-Length or its closing the connection."""
    answer = b""
    with suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and _complete(answer):
                break
    return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _parse(answer: bytes) -> tuple[int, str, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/"):
        return 0, "", answer
    headers = dict(
        (n.strip().lower().decode(), v.strip().decode("latin-1"))
        for n, _, v in (line.partition(b":") for line in lines[1:])
    )
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


def _json(content_type: str, body: bytes) -> bool:
    if not content_type.startswith("application/json"):
        return False
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


def _answer(r: httpx.Response) -> tuple[int, str, bytes]:
    """(status, content type, body), as :func:`raw` gives them."""
    return r.status_code, r.headers.get("content-type", ""), r.content


def _seen(status: int, content_type: str, body: bytes = b"") -> str:
    kind = content_type.split(";")[0] or "no body"
    return f"{status or 'no answer'} {kind} {body[:40]!r}" if status != 200 else "200"


def long_request_line(s: Probed) -> tuple[bool, str]:
    """A 27,000-byte request line reaches the app (the longest the spec allows is 26,982
    bytes, docs/production.md; past gunicorn's own 8190, which it drops behind the edge)."""
    r = httpx.get(s.base + "/api/tasks/?search=" + "x" * 27000, headers=s.auth, timeout=10)
    ok = r.status_code == 400 and "search" in r.text
    return ok, _seen(*_answer(r))


def many_headers(s: Probed) -> tuple[bool, str]:
    """150 header fields of 100 bytes reach the app (a proxy chain and tracing add many)."""
    headers = {**s.auth, **{f"X-Extra-{n}": "v" * 100 for n in range(150)}}
    r = httpx.get(s.base + "/api/tasks/", headers=headers, timeout=10)
    return r.status_code == 200, _seen(*_answer(r))


def big_header(s: Probed) -> tuple[bool, str]:
    """One header field of 8,000 bytes reaches the app."""
    r = httpx.get(s.base + "/api/tasks/", headers={**s.auth, "X-Trace": "t" * 8000}, timeout=10)
    return r.status_code == 200, _seen(*_answer(r))


def oversized_header_is_json(s: Probed) -> tuple[bool, str]:
    """A 512 KiB header, past either server's limit, is refused in the contract's shape."""
    head = f"GET /api/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: {'h' * (512 << 10)}\r\n\r\n"
    status, content_type, body = raw(s.port, head.encode())
    return 400 <= status < 500 and _json(content_type, body), _seen(status, content_type, body)


def malformed_request_is_json(s: Probed) -> tuple[bool, str]:
    """A header line without a colon is refused with a 400 in JSON."""
    head = b"GET /api/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon here\r\n\r\n"
    status, content_type, body = raw(s.port, head)
    return status == 400 and _json(content_type, body), _seen(status, content_type, body)


def control_character_is_json(s: Probed) -> tuple[bool, str]:
    """A control character in a header value (nginx passes it on) is a 400 in JSON."""
    head = b"GET /api/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Note: a\x01b\r\n\r\n"
    status, content_type, body = raw(s.port, head)
    return status == 400 and _json(content_type, body), _seen(status, content_type, body)


def body_limit(s: Probed) -> tuple[bool, str]:
    """A 2 MiB body reaches the app, which refuses it with 413 in JSON (its 1 MiB limit),
    rather than the server answering in its own shape."""
    body = json.dumps({"title": "t", "description": "d" * (2 << 20)})
    headers = {**s.auth, "Content-Type": "application/json"}
    status, content_type, answer = _answer(
        httpx.post(s.base + "/api/tasks/", content=body, headers=headers, timeout=30)
    )
    return status == 413 and _json(content_type, answer), _seen(status, content_type, answer)


def forwarded_proto(s: Probed) -> tuple[bool, str]:
    """The server passes X-Forwarded-Proto and -Host on, and the app, behind a configured
    proxy, believes them: the Location is https (the app decides whom it trusts)."""
    headers = {**s.auth, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "localhost"}
    r = httpx.post(s.base + "/api/tasks/", json={"title": "t"}, headers=headers, timeout=10)
    location = r.headers.get("location", "")
    return r.status_code == 201 and location.startswith("https://localhost/"), location or "none"


def slow_clients(s: Probed) -> tuple[bool, str]:
    """While 24 clients trickle their headers a byte a second, /healthz answers in 2 s."""
    stop = threading.Event()
    socks = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(SLOW_CLIENTS)]

    def trickle(sock: socket.socket) -> None:
        sock.sendall(b"GET /api/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        while not stop.wait(1.0):
            try:
                sock.sendall(b"s")
            except OSError:
                return

    try:
        for sock in socks:
            threading.Thread(target=trickle, args=(sock,), daemon=True).start()
        time.sleep(2)
        started = time.monotonic()
        try:
            status = httpx.get(s.base + "/healthz", timeout=10).status_code
        except httpx.TimeoutException:
            status = 0
        waited = time.monotonic() - started
    finally:
        stop.set()
        for sock in socks:
            sock.close()
    return status == 200 and waited < 2, f"{status or 'no answer'} after {waited:.1f} s"


def graceful_shutdown(s: Probed) -> tuple[bool, str]:
    """SIGTERM while a POST's body is still arriving: that POST is answered 201, then the
    server exits within 30 s (the compose file's stop grace period)."""
    body = json.dumps({"title": "sent across a shutdown"}).encode()
    head = (
        f"POST /api/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {s.auth['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with closing(socket.create_connection(("127.0.0.1", s.port), timeout=30)) as sock:
        sock.sendall(head + body[:10])
        time.sleep(0.5)
        os.kill(s.proc.pid, signal.SIGTERM)
        time.sleep(1.0)
        sock.sendall(body[10:])
        status = _parse(_read_answer(sock))[0]
    try:
        s.proc.wait(timeout=30)
        exited = "exited"
    except subprocess.TimeoutExpired:
        exited = "still running after 30 s"
    return status == 201 and exited == "exited", f"{status or 'no answer'}, {exited}"


PROBES = [
    long_request_line,
    many_headers,
    big_header,
    oversized_header_is_json,
    malformed_request_is_json,
    control_character_is_json,
    body_limit,
    forwarded_proto,
    slow_clients,
    graceful_shutdown,  # last: it stops the server
]


def run(kinds: tuple[str, ...] = ("gunicorn", "granian")) -> dict:
    """{probe: {server: (kept, what was seen)}} for every probe and server."""
    users = bench_users()
    results: dict = {probe.__name__: {} for probe in PROBES}
    try:
        for kind in kinds:
            server = Probed(kind, users["intern"])
            try:
                for probe in PROBES:
                    results[probe.__name__][kind] = _outcome(probe, server)
            finally:
                server.stop()
    finally:
        cleanup_writes(users["max_task_id"])
    return results


def _cell(kept: bool, seen: str) -> str:
    return f"{'kept' if kept else 'LOST'}: {seen}"


def _outcome(probe, server: Probed) -> tuple[bool, str]:
    """The probe's (kept, what was seen); a connection the server broke counts as lost."""
    try:
        return probe(server)
    except (httpx.HTTPError, OSError) as error:
        return False, f"{type(error).__name__}: {error}"[:80]


def report(results: dict) -> str:
    kinds = list(next(iter(results.values())))
    rows = [
        [name.replace("_", " "), *(_cell(ok, seen) for ok, seen in r.values())]
        for name, r in results.items()
    ]
    return table(rows, ["behaviour", *kinds])


def lost_behind_the_edge(results: dict, kind: str) -> list[str]:
    """The behaviours ``kind`` loses in production, where the edge covers EDGE_COVERS."""
    return [
        name.replace("_", " ")
        for name, r in results.items()
        if not r[kind][0] and name not in EDGE_COVERS
    ]


if __name__ == "__main__":
    outcome = run()
    print(report(outcome))
    for server in ("gunicorn", "granian"):
        lost = lost_behind_the_edge(outcome, server)
        print(f"{server} behind the edge loses: {', '.join(lost) or 'nothing'}")
