"""The cluster's webhook receiver, run on the ``hooks`` host:

    python -m reliability.cluster.hooks --listen 10.77.0.50:9000

Every POST is verified with the public ``standardwebhooks`` package (never taskapp's
signing code) against the secret the driver hands over (``POST /_secret``), held
``--hold`` seconds (so that a delivery is in flight long enough to kill its worker), and
recorded: ``webhook-id``, the event type, the peer address, whether it verified.
``GET /_records`` returns the records, ``GET /_in_flight`` the peers with a request open.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class State:
    def __init__(self, hold: float):
        self.hold = hold
        self.secret: str | None = None
        self.records: list[dict] = []
        self.in_flight: dict[str, int] = {}
        self.lock = threading.Lock()


def handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, status: int, payload=None) -> None:
            body = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            with state.lock:
                if self.path == "/_records":
                    return self._answer(200, list(state.records))
                if self.path == "/_in_flight":
                    return self._answer(200, {k: v for k, v in state.in_flight.items() if v})
            self._answer(404, {})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path == "/_secret":
                state.secret = body.decode()
                return self._answer(204)
            peer = self.client_address[0]
            with state.lock:
                state.in_flight[peer] = state.in_flight.get(peer, 0) + 1
            try:
                time.sleep(state.hold)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    Webhook(state.secret or "whsec_").verify(body, headers)
                    verified = True
                except (WebhookVerificationError, ValueError):
                    verified = False
                try:
                    event = json.loads(body).get("type")
                except ValueError:
                    event = None
                with state.lock:
                    state.records.append(
                        {
                            "msg_id": headers.get("webhook-id"),
                            "event": event,
                            "peer": peer,
                            "verified": verified,
                            "at": time.time(),
                        }
                    )
                self._answer(200)
            finally:
                with state.lock:
                    state.in_flight[peer] -= 1

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--hold", type=float, default=0.05, help="seconds before answering")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), handler(State(args.hold)))
    server.daemon_threads = True
    print(f"hooks listening on {args.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
