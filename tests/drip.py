"""A hostile webhook receiver for the tests and the bench: a TCP server on 127.0.0.1
(port 0) that reads the request and then answers as slowly as it likes, without ever
letting a socket read wait long enough to time out.

Modes (chosen per path, default ``headers``):

- ``headers``: the status line, then one header line a second, forever;
- ``body``: status and headers at once with a large ``content-length``, then the body
  one byte a second;
- ``silent``: reads the request and never answers;
- a number: answers that status code at once (``500``).

Each connection is recorded (:class:`Held`): when it was accepted and when the client
cut it (the first failed write, or end of file on the read side).
"""

import contextlib
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class Held:
    path: str
    accepted: float
    cut: float | None = None

    @property
    def held_for(self) -> float | None:
        return None if self.cut is None else self.cut - self.accepted


class DripReceiver:
    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.modes: dict[str, str | int] = {}
        self.held: list[Held] = []
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def url(self, path: str, mode: str | int = "headers") -> str:
        self.modes[path] = mode
        return self.base_url + path

    def at(self, path: str) -> list[Held]:
        with self.lock:
            return [h for h in self.held if h.path == path]

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        accepted = time.monotonic()
        with conn:
            path = self._read_request(conn)
            held = Held(path, accepted)
            with self.lock:
                self.held.append(held)
            mode = self.modes.get(path, "headers")
            with contextlib.suppress(OSError):
                self._answer(conn, mode)
            held.cut = time.monotonic()

    def _read_request(self, conn: socket.socket) -> str:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        return lines[0].split(" ")[1] if " " in lines[0] else "/"

    def _answer(self, conn: socket.socket, mode) -> None:
        if isinstance(mode, int):
            conn.sendall(f"HTTP/1.1 {mode} X\r\ncontent-length: 0\r\n\r\n".encode())
            return
        if mode == "silent":
            self._wait_for_cut(conn, lambda: None)
            return
        if mode == "headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            step = iter(range(10**9))
            self._wait_for_cut(conn, lambda: conn.sendall(f"x-drip-{next(step)}: .\r\n".encode()))
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
        self._wait_for_cut(conn, lambda: conn.sendall(b"."))

    def _wait_for_cut(self, conn: socket.socket, drip) -> None:
        """Drip every interval until the client closes its side (or the test ends)."""
        conn.settimeout(self.interval)
        while not self.closing.is_set():
            try:
                if conn.recv(1) == b"":
                    return  # the client closed the connection
            except TimeoutError:
                pass
            drip()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.closing.set()
        self.server.close()
