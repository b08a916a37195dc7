"""A real webhook receiver for the tests: an HTTP server thread on 127.0.0.1 (port 0)
that verifies every request with the public ``standardwebhooks`` package (not with
taskapp's signing code) and records what it got.

Each path answers from a script (``script(path, [500, 500, 200])``; then 200), and may
hold a request for a while (``hold(path, seconds)``). Concurrency per ``webhook-id`` is
recorded: ``max_in_flight_per_id`` must stay 1 when one worker at a time sends a message.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    verified_with: list[str]
    answered: int
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    def __init__(self):
        self.requests: list[Received] = []
        self.secrets: dict[str, list[str]] = {}
        self.scripts: dict[str, list[int]] = {}
        self.holds: dict[str, float] = {}
        self.extra_headers: dict[str, dict] = {}
        self.in_flight: dict[str, int] = {}
        self.max_in_flight_per_id = 0
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def trust(self, path: str, *secrets: str) -> None:
        """Verify requests to ``path`` with these secrets (each tried on its own)."""
        self.secrets[path] = list(secrets)

    def script(self, path: str, statuses: list[int], **headers) -> None:
        self.scripts[path] = list(statuses)
        self.extra_headers[path] = headers

    def hold(self, path: str, seconds: float) -> None:
        self.holds[path] = seconds

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def _answer(self, path: str) -> int:
        with self.lock:
            script = self.scripts.get(path) or []
            return script.pop(0) if script else 200

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                msg_id = headers.get("webhook-id", "")
                with receiver.lock:
                    receiver.in_flight[msg_id] = receiver.in_flight.get(msg_id, 0) + 1
                    receiver.max_in_flight_per_id = max(
                        receiver.max_in_flight_per_id, receiver.in_flight[msg_id]
                    )
                receiver.started.set()
                try:
                    hold = receiver.holds.pop(self.path, 0)
                    if hold:
                        time.sleep(hold)
                    verified = []
                    for secret in receiver.secrets.get(self.path, []):
                        try:
                            Webhook(secret).verify(body, headers)
                            verified.append(secret)
                        except WebhookVerificationError:
                            pass
                    status = receiver._answer(self.path)
                    with receiver.lock:
                        receiver.requests.append(
                            Received(self.path, headers, body, verified, status)
                        )
                    self.send_response(status)
                    for name, value in receiver.extra_headers.get(self.path, {}).items():
                        self.send_header(name.replace("_", "-"), str(value))
                    self.send_header("content-length", "0")
                    self.end_headers()
                finally:
                    with receiver.lock:
                        receiver.in_flight[msg_id] -= 1

        return Handler

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
