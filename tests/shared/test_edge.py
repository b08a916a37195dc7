"""The production edge (deploy/nginx) with the real nginx in front of a real gunicorn
running taskapp: slow clients never reach a worker, every answer of the edge is JSON, a
request the spec allows always passes, the app trusts exactly one hop, a dead app server
is skipped for idempotent requests, and streams pass unbuffered."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import IN_CI, JWT_SECRET, PASSWORD, create_user, wait_for

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
HEX_ID = re.compile(r"^[0-9a-f]{32}$")

# The edge sits in front of the production configuration, so these run on PostgreSQL.
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

if NGINX is None:
    if IN_CI:
        raise RuntimeError("nginx is not installed (CI installs it in .ci/run)")
    pytestmark = [pytestmark, pytest.mark.skip(reason="nginx is not installed")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited early:\n{log.read_text()}")
        if _listening(port):
            return
        time.sleep(0.05)
    pytest.fail(f"nothing listens on {port}:\n{log.read_text()}")


def _edge_answers(port: int) -> bool:
    """The edge answers HTTP itself (its 404 for an internal location: no app involved)."""
    request = b"GET /_edge/error HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    try:
        return raw(port, request, timeout=5).startswith(b"HTTP/1.1 404")
    except OSError:
        return False


def _listening(port: int) -> bool:
    """Something accepts on ``port``. A probe whose kernel-chosen source port happens to be
    ``port`` connects to itself (TCP simultaneous open) while nothing listens: not that."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            return False
        return probe.getsockname() != probe.getpeername()


class Servers:
    """gunicorn (gunicorn.conf.py, as production runs it) and the edge, torn down after."""

    def __init__(self, database_url: str, tmp_path: Path):
        self.database_url = database_url
        self.tmp = tmp_path
        self.gunicorns: dict[int, subprocess.Popen] = {}
        self.edges: list[subprocess.Popen] = []
        self.logs: dict[int, Path] = {}

    def gunicorn(self, workers: int = 1, **env_overrides: str) -> int:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TASKAPP_", "FORWARD"))},
            "DATABASE_URL": self.database_url,
            "JWT_SECRET_KEY": JWT_SECRET,
            "CELERY_BROKER_URL": "memory://",
            "TASKAPP_INSTANCE_DIR": str(self.tmp),
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "8",
            "PASSWORD_HASH_PARALLELISM": "1",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(workers),
            "TRUSTED_PROXY_COUNT": "1",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            **env_overrides,
        }
        env.pop("REDIS_URL", None)
        log = self.logs[port] = self.tmp / f"gunicorn-{port}.log"
        process = subprocess.Popen(
            [GUNICORN, "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.gunicorns[port] = process
        wait_for_port(port, process, log)
        for _ in range(workers):  # every worker has imported the app and answers
            assert call(port, "GET", "/healthz")[0] == 200
        return port

    def edge(self, *upstreams: int, stream: int | None = None) -> int:
        port = free_port()
        argv = [sys.executable, "-m", "reliability.edge", "--listen", f"127.0.0.1:{port}"]
        for upstream in upstreams:
            argv += ["--upstream", f"127.0.0.1:{upstream}"]
        if stream:
            argv += ["--stream-upstream", f"127.0.0.1:{stream}"]
        log = self.logs[port] = self.tmp / f"edge-{port}.log"
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.edges.append(process)
        wait_for_port(port, process, log)
        assert wait_for(lambda: _edge_answers(port), 10), log.read_text()
        return port

    def kill_gunicorn(self, port: int) -> None:
        """SIGKILL the master and every worker at once, as a host dying would."""
        os.killpg(self.gunicorns[port].pid, signal.SIGKILL)
        self.gunicorns[port].wait(timeout=10)

    def close(self) -> list[int]:
        """Stop everything; the edges' exit codes (SIGTERM must stop them cleanly)."""
        codes = []
        for process in self.edges:
            process.terminate()
            codes.append(process.wait(timeout=20))
        for process in self.gunicorns.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        return codes


@pytest.fixture
def servers(database_url, tmp_path):
    running = Servers(database_url, tmp_path)
    try:
        yield running
    finally:
        codes = running.close()
    assert codes == [0] * len(codes), f"the edge did not stop cleanly on SIGTERM: {codes}"


def call(port, method, target, body=None, headers=None, source="127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, target, body=payload, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def raw(port, data: bytes, timeout: float = 20) -> bytes:
    """Send bytes as they are; everything the edge answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def parse(answer: bytes) -> tuple[int, dict, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


def token(port, username="boss") -> dict:
    status, _, body = call(
        port, "POST", "/api/auth/login/", {"username": username, "password": PASSWORD}
    )
    assert status == 200, body
    return {"Authorization": f"Bearer {json.loads(body)['access']}"}


def timed_healthz(port) -> float:
    started = time.monotonic()
    status, _, _ = call(port, "GET", "/healthz")
    assert status == 200
    return time.monotonic() - started


def slow_clients(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send a POST's headers and one byte of its body, then
    wait: the attack that stalled every gunicorn worker without the edge."""
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(
            b"POST /api/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        opened.append(sock)
    return opened


def test_slow_clients_never_hold_an_app_worker(app, servers):
    """One gunicorn worker only: 4, then 50 slow-body connections through the edge, and
    /healthz through the edge still answers in well under a second; the edge then drops
    the slow connections after client_body_timeout (10 s) without an answer."""
    edge = servers.edge(servers.gunicorn(workers=1))
    assert timed_healthz(edge) < 1
    opened = slow_clients(edge, 4)
    assert max(timed_healthz(edge) for _ in range(5)) < 1
    opened += slow_clients(edge, 50)
    assert max(timed_healthz(edge) for _ in range(5)) < 1
    opened[0].settimeout(20)
    assert opened[0].recv(1024) == b""  # closed by the edge, nothing sent
    for sock in opened:
        sock.close()


def _assert_edge_error(answer: bytes, status: int) -> None:
    code, headers, body = parse(answer)
    assert code == status, answer[:300]
    assert headers["content-type"] == ["application/json"], answer[:300]
    detail = json.loads(body)
    assert set(detail) == {"detail"} and isinstance(detail["detail"], str), body
    assert len(headers["x-request-id"]) == 1 and HEX_ID.match(headers["x-request-id"][0])


def test_every_error_the_edge_answers_is_json(app, servers):
    edge = servers.edge(servers.gunicorn())
    host = b"Host: 127.0.0.1\r\n"
    cases = {
        400: b"GET /api/tasks/ HTTP/1.1\r\n" + host + b"A header without a colon\r\n\r\n",
        413: b"POST /api/tasks/ HTTP/1.1\r\n" + host + b"Content-Length: 1048577\r\n\r\n",
        414: b"GET /api/tasks/?search=" + b"x" * 70000 + b" HTTP/1.1\r\n" + host + b"\r\n",
        431: b"GET /api/tasks/ HTTP/1.1\r\n" + host + b"X-Big: " + b"b" * 70000 + b"\r\n\r\n",
        404: b"GET /_edge/error HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n",
    }
    for status, request in cases.items():
        _assert_edge_error(raw(edge, request), status)
    # Not a request at all.
    _assert_edge_error(raw(edge, b"\x16\x03\x01 not http\r\n\r\n"), 400)

    # nginx passes a control character in a header value on; gunicorn refuses it, in
    # JSON too (gunicorn.conf.py), and the edge keeps the request id.
    odd = b"GET /healthz HTTP/1.1\r\n" + host + b"Connection: close\r\nX-Odd: a\x01b\r\n\r\n"
    answer = raw(edge, odd)
    code, headers, body = parse(answer)
    assert code == 400 and headers["content-type"] == ["application/json"], answer
    assert "detail" in json.loads(body) and HEX_ID.match(headers["x-request-id"][0])


def test_unreachable_and_silent_app_servers_are_json_502_and_504(servers):
    closed = free_port()
    edge = servers.edge(closed)
    request = b"GET /api/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = raw(edge, request)
    _assert_edge_error(answer, 502)
    assert parse(answer)[1]["retry-after"] == ["5"]

    # A server whose accept queue is full never completes a connection: the edge gives
    # up after proxy_connect_timeout (3 s) with 504.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())
            fillers.append(filler)
        time.sleep(0.2)
        silent = servers.edge(full.getsockname()[1])
        started = time.monotonic()
        answer = raw(silent, request)
        assert 2 < time.monotonic() - started < 15
        _assert_edge_error(answer, 504)
        for filler in fillers:
            filler.close()


def _pattern_values(pattern: str) -> list[str]:
    """The alternatives of a list pattern such as ``^(A|B)(,(A|B))*$``."""
    found = re.match(r"^\^-?\??\(([^()]+)\)", pattern)
    return found.group(1).split("|") if found else []


def _longest_value(schema: dict) -> str:
    """The longest value the schema allows, percent-encoded, where the spec bounds it;
    where it does not, the longest the server accepts (see docs/production.md)."""
    if "anyOf" in schema:
        return max((_longest_value(s) for s in schema["anyOf"]), key=len)
    kind = schema.get("type")
    if kind == "integer":
        return str(schema["maximum"]) if "maximum" in schema else "9" * 20
    if kind == "boolean":
        return "false"
    if schema.get("format") == "date":
        return "2026-12-31"
    if schema.get("format") == "date-time":
        return urllib.parse.quote("2026-12-31T23:59:59.999999+14:00", safe="")
    if "maxLength" in schema:
        # a 4-byte UTF-8 character per position, each byte percent-encoded
        return urllib.parse.quote("\U0001f600" * schema["maxLength"], safe="")
    if "pattern" in schema and _pattern_values(schema["pattern"]):
        words = _pattern_values(schema["pattern"])
        prefix = "-" if schema["pattern"].startswith("^-?") else ""
        return urllib.parse.quote(",".join(prefix + w for w in words), safe="")
    return "x" * 64  # an unbounded string (the calendar feed's secret): 64 characters


def largest_request_line(spec: dict) -> tuple[int, str]:
    """The longest request line any operation of the spec allows: (length, line)."""
    best = (0, "")
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            params = operation.get("parameters", []) + operations.get("parameters", [])
            target = path
            query = []
            for param in params:
                value = _longest_value(param.get("schema", {}))
                if param["in"] == "path":
                    target = target.replace("{" + param["name"] + "}", value)
                elif param["in"] == "query":
                    query.append(f"{param['name']}={value}")
            if query:
                target += "?" + "&".join(query)
            line = f"{method.upper()} {target} HTTP/1.1"
            best = max(best, (len(line), line))
    return best


def test_the_longest_request_the_spec_allows_reaches_the_app(app, client, servers):
    """Derived from the live OpenAPI document: that request line, plus the largest
    header the spec defines and an 8,000-byte one, is answered by the app (JSON), never
    414/431; docs/production.md states the same figure. A header field over gunicorn's
    8190 bytes is refused with 431, in JSON too."""
    create_user(app, "boss")
    spec = client.get("/api/openapi.json").get_json()
    length, line = largest_request_line(spec)
    docs = (ROOT / "docs" / "production.md").read_text()
    assert f"{length:,} bytes" in docs, f"docs/production.md should say {length:,} bytes"
    assert length < 64 * 1024

    edge = servers.edge(servers.gunicorn())
    headers = {**token(edge), "Idempotency-Key": "k" * 255, "X-Trace": "t" * 8000}
    method, target, _ = line.split(" ")
    status, answer, body = call(edge, method, target, None, headers)
    assert status not in (414, 431, 502), body[:300]
    assert answer["Content-Type"] == "application/json" and "Server: nginx" not in str(body)
    # The same for the task list with every filter at its longest.
    _, tasks_line = largest_request_line({"paths": {"/api/tasks/": spec["paths"]["/api/tasks/"]}})
    status, _, body = call(edge, "GET", tasks_line.split(" ")[1], None, headers)
    assert status in (200, 400) and json.loads(body), body[:300]
    status, answer, body = call(edge, "GET", "/api/tasks/", None, {"X-Trace": "t" * 9000})
    assert status == 431 and answer["Content-Type"] == "application/json", body
    assert "detail" in json.loads(body)


def test_the_app_trusts_one_hop_so_limits_key_on_the_real_client(app, servers):
    """A client's own X-Forwarded-For never changes the address the app sees: five
    failed logins with five spoofed addresses use up the limit of 5 for the real one;
    another real client (127.0.0.2) is not affected."""
    create_user(app, "boss")
    edge = servers.edge(servers.gunicorn())
    auth = token(edge)
    wrong = {"username": "boss", "password": "nope"}
    for n in range(5):
        spoof = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.{n}"}
        assert call(edge, "POST", "/api/auth/login/", wrong, spoof)[0] == 401
    status, headers, body = call(edge, "POST", "/api/auth/login/", wrong, spoof)
    assert status == 429 and "Retry-After" in headers, body
    assert call(edge, "POST", "/api/auth/login/", wrong, source="127.0.0.2")[0] == 401
    # X-Forwarded-Host/-Proto from the edge make the app's links the client's.
    status, headers, _ = call(edge, "POST", "/api/tasks/", {"title": "t"}, auth, source="127.0.0.3")
    assert status == 201 and headers["Location"].startswith(f"http://127.0.0.1:{edge}/")


class _Readers:
    """Clients that GET a page through the edge over and over, each in its own thread,
    recording every status, every answer cut short (``IncompleteRead``, with the reader
    and when) and anything else that stops a reader."""

    def __init__(self, edge: int, auth: dict, count: int = 4):
        self.edge, self.auth = edge, auth
        self.statuses: list[int] = []
        self.cut_short: list[tuple[int, float]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(n,)) for n in range(count)]
        for thread in self.threads:
            thread.start()

    def _read(self, number: int) -> None:
        while not self.stop.is_set():
            try:
                answer = call(self.edge, "GET", "/api/tasks/?page_size=5", None, self.auth)
                self.statuses.append(answer[0])
            except http.client.IncompleteRead:
                self.cut_short.append((number, time.monotonic()))
            except Exception as error:
                self.failures.append(repr(error))
                return

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive()


def test_a_dead_app_server_is_skipped_for_idempotent_requests(app, servers):
    """Two app servers behind the edge; one is SIGKILLed (master and workers) while four
    clients keep reading: every GET is answered 200 (in-flight ones are retried on the
    other), and a POST after the kill succeeds too (a refused connection never reached it).

    The one exception: a GET whose headers reached the edge and whose whole body did not
    before its server died. nginx has passed the headers on and cannot retry it, so that
    client reads a body cut short of its Content-Length (``IncompleteRead``): after the
    kill only, at most once per reader (each has one request in flight at the kill).
    Anything else a reader meets fails the test."""
    create_user(app, "boss")
    first, second = servers.gunicorn(workers=2), servers.gunicorn(workers=2)
    edge = servers.edge(first, second)
    auth = token(edge)
    readers = _Readers(edge, auth)
    time.sleep(1.5)
    before = len(readers.statuses)
    assert "GET /api/tasks/" in servers.logs[first].read_text()
    assert "GET /api/tasks/" in servers.logs[second].read_text()
    killed_at = time.monotonic()
    servers.kill_gunicorn(first)
    time.sleep(2)
    readers.finish()
    assert readers.failures == []
    cut_readers = [number for number, _ in readers.cut_short]
    assert len(cut_readers) == len(set(cut_readers)), readers.cut_short
    assert all(when > killed_at for _, when in readers.cut_short), readers.cut_short
    statuses = readers.statuses
    assert len(statuses) > before + 10
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    for n in range(4):
        assert call(edge, "POST", "/api/tasks/", {"title": f"after {n}"}, auth)[0] == 201


class _Stream(BaseHTTPRequestHandler):
    """A stand-in event stream: one event, a pause, another event; records headers."""

    seen: list[dict] = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        _Stream.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("X-Request-ID", "from-upstream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"data: one\n\n")
        self.wfile.flush()
        time.sleep(1.5)
        self.wfile.write(b"data: two\n\n")
        self.wfile.flush()


def test_streams_pass_unbuffered_and_request_ids_go_both_ways(servers):
    stream = ThreadingHTTPServer(("127.0.0.1", 0), _Stream)
    threading.Thread(target=stream.serve_forever, daemon=True).start()
    try:
        edge = servers.edge(free_port(), stream=stream.server_address[1])
        conn = http.client.HTTPConnection("127.0.0.1", edge, timeout=10)
        started = time.monotonic()
        conn.request("GET", "/api/events/", headers={"X-Request-ID": "client-id.1:a_b-c"})
        response = conn.getresponse()
        first = response.read1(100)
        first_at = time.monotonic() - started
        rest = response.read()
        conn.close()
    finally:
        stream.shutdown()
        stream.server_close()
    assert first == b"data: one\n\n" and first_at < 1.0, (first, first_at)
    assert rest == b"data: two\n\n"
    assert response.headers.get_all("X-Request-ID") == ["client-id.1:a_b-c"]
    seen = {k.lower(): v for k, v in _Stream.seen[-1].items()}
    assert seen["x-request-id"] == "client-id.1:a_b-c"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == f"127.0.0.1:{edge}"

    # An id outside the contract's shape is replaced by the edge's own.
    status, headers, _ = call(edge, "GET", "/healthz", headers={"X-Request-ID": "bad id!"})
    assert status == 502 and HEX_ID.match(headers["X-Request-ID"])
