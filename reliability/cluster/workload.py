"""The clients: threads in the root namespace that drive writes and reads through the edge
and record every request (what, when, the answer) for the reconciliation.

Each client is its own INTERN user and loops over: create a task (with an
``Idempotency-Key``, retried with the same key while the outcome is unknown), rename one
of its tasks (PATCH), delete one (DELETE), list and read. Every write's final outcome is
``ack`` (2xx), ``refused`` (an answer that says nothing was written: 4xx, or the app's
503, which it gives after a rollback) or ``unknown`` (no answer, or the edge's 502/504: it
may or may not have been applied). A DELETE answered 404 is ``gone``: see
:func:`delete_outcome`.
"""

import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx

from reliability.cluster.hosts import EDGE

PASSWORD = "cluster-password-not-secret"


@dataclass
class Request:
    kind: str
    started: float
    ended: float
    status: int  # 0: no answer
    via_edge: bool = True

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500


@dataclass
class Write:
    kind: str  # create, rename, delete
    title: str  # create: the title; rename: the new title; delete: the task's title
    task_id: int | None
    outcome: str  # ack, refused, unknown
    last: Request | None = None  # the last HTTP request of this write


@dataclass
class Client:
    name: str
    token: str = ""
    requests: list[Request] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    live: list[tuple[int, str]] = field(default_factory=list)  # (id, title) believed present
    counter: int = 0


def outcome(status: int) -> str:
    if 200 <= status < 300:
        return "ack"
    if status in (0, 502, 504):
        return "unknown"
    return "refused"


def delete_outcome(status: int) -> str:
    """Only a task's owner deletes it here, so a DELETE of a task the client holds that is
    answered 404 means an earlier attempt of this same request removed it: the edge sends
    a DELETE again to the next app server when the first died before answering, and that
    one may have committed (docs/production.md, "Balancing and failover")."""
    return "gone" if status == 404 else outcome(status)


class Load:
    def __init__(self, clients: int, seed: int = 1):
        self.clients = [Client(f"client{n}") for n in range(clients)]
        self.stop = threading.Event()
        self.random = random.Random(seed)
        self.threads: list[threading.Thread] = []

    def login_all(self) -> None:
        with httpx.Client(base_url=EDGE, timeout=30) as http:
            for client in self.clients:
                answer = http.post(
                    "/api/auth/login/", json={"username": client.name, "password": PASSWORD}
                )
                answer.raise_for_status()
                client.token = answer.json()["access"]

    def start(self) -> None:
        for client in self.clients:
            seed = self.random.random()
            thread = threading.Thread(target=self._run, args=(client, seed), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def requests(self) -> list[Request]:
        return [r for c in self.clients for r in c.requests]

    def writes(self) -> list[Write]:
        return [w for c in self.clients for w in c.writes]

    # --- one client ---------------------------------------------------------------------
    def _run(self, client: Client, seed: float) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {client.token}"}
        with httpx.Client(base_url=EDGE, timeout=20, headers=headers) as http:
            while not self.stop.is_set():
                roll = rng.random()
                if roll < 0.35 or not client.live:
                    self._create(http, client)
                elif roll < 0.55:
                    self._rename(http, client, rng)
                elif roll < 0.65:
                    self._delete(http, client, rng)
                else:
                    self._read(http, client, rng)
                time.sleep(0.02)

    def _call(self, http, client: Client, kind: str, method: str, url: str, **kwargs):
        started = time.monotonic()
        try:
            answer = http.request(method, url, **kwargs)
            status, body = answer.status_code, answer
        except httpx.HTTPError:
            status, body = 0, None
        client.requests.append(Request(kind, started, time.monotonic(), status))
        return status, body

    def _create(self, http, client: Client) -> None:
        client.counter += 1
        title = f"{client.name}-t{client.counter}"
        key = str(uuid.uuid4())
        seen = set()
        for _attempt in range(3):
            status, body = self._call(
                http, client, "create", "POST", "/api/tasks/",
                json={"title": title, "priority": "MEDIUM"}, headers={"Idempotency-Key": key},
            )  # fmt: skip
            seen.add(outcome(status))
            result = outcome(status)
            if result == "ack" or status not in (0, 502, 503, 504):
                break
            time.sleep(1)  # the same key again: applied at most once, whatever happened
        if result == "refused" and "unknown" in seen:
            result = "unknown"  # an earlier try may have been applied
        task_id = body.json().get("id") if result == "ack" else None
        client.writes.append(Write("create", title, task_id, result, client.requests[-1]))
        if result == "ack":
            client.live.append((task_id, title))

    def _rename(self, http, client: Client, rng) -> None:
        index = rng.randrange(len(client.live))
        task_id, _ = client.live[index]
        client.counter += 1
        title = f"{client.name}-r{client.counter}"
        status, _ = self._call(
            http, client, "rename", "PATCH", f"/api/tasks/{task_id}/", json={"title": title}
        )
        result = outcome(status)
        client.writes.append(Write("rename", title, task_id, result, client.requests[-1]))
        if result == "ack":
            client.live[index] = (task_id, title)

    def _delete(self, http, client: Client, rng) -> None:
        task_id, title = client.live.pop(rng.randrange(len(client.live)))
        status, _ = self._call(http, client, "delete", "DELETE", f"/api/tasks/{task_id}/")
        result = delete_outcome(status)
        client.writes.append(Write("delete", title, task_id, result, client.requests[-1]))
        if result == "refused":
            client.live.append((task_id, title))

    def _read(self, http, client: Client, rng) -> None:
        if rng.random() < 0.5:
            self._call(http, client, "list", "GET", "/api/tasks/?page_size=20")
        else:
            task_id, _ = rng.choice(client.live)
            self._call(http, client, "get", "GET", f"/api/tasks/{task_id}/")
