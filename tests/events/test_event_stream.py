"""The event stream GET /api/events/, through HTTP against the real stream service
(gunicorn with gevent workers, deploy/stream.gunicorn.conf.py) in its own process, while
the API (the test client) writes to the same database: who hears what (reassignments
included), resuming without loss across a restart, reset, heartbeats, the stream ending
with its credentials, tickets, and wake-ups over Redis from another process."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import httpx_sse
import pytest
from helpers import JWT_SECRET, only_postgresql, wait_for

from taskapp.config import load_config

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def stream_server(database_url: str, tmp_path: Path, **settings):
    """The stream service on 127.0.0.1 and a free port; yields its base URL."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DATABASE_URL=database_url,
        JWT_SECRET_KEY=JWT_SECRET,
        # the test app's key for personal tokens (derived from the environment's secret)
        TOKEN_HASH_KEY=load_config()["TOKEN_HASH_KEY"],
        STREAM_BIND=f"127.0.0.1:{port}",
        TASKAPP_INSTANCE_DIR=str(tmp_path),
    )
    env.update(
        {
            "EVENTS_POLL_SECONDS": "0.2",
            "EVENTS_CREDENTIAL_CHECK_SECONDS": "0.5",
            **{key: str(value) for key, value in settings.items()},
        }
    )
    log = open(tmp_path / f"stream-{port}.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [GUNICORN, "-c", "deploy/stream.gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _up(base), timeout=120), (
            tmp_path / f"stream-{port}.log"
        ).read_text()
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Listener:
    """A client holding one stream in a thread: the events it got, and when it ended."""

    def __init__(self, base: str, headers=None, params=None):
        self.events: list = []
        self.status = None
        self.body = None
        self.done = threading.Event()
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self.thread = threading.Thread(
            target=self._run, args=(base + "/api/events/", headers or {}, params or {})
        )
        self.thread.daemon = True
        self.thread.start()
        assert wait_for(lambda: self.status is not None, timeout=15)

    def _run(self, url, headers, params):
        try:
            with httpx_sse.connect_sse(
                self.client, "GET", url, headers=headers, params=params
            ) as source:
                if source.response.status_code != 200:
                    self.body = source.response.read()
                self.status = source.response.status_code
                if self.status != 200:
                    return
                for event in source.iter_sse():
                    if event.data:  # the opening block carries only `retry:`
                        self.events.append(event)
        except httpx.HTTPError:
            pass
        finally:
            if self.status is None:
                self.status = -1
            self.done.set()

    def names(self) -> list[str]:
        return [event.event for event in self.events]

    def tasks(self) -> list[tuple[str, int]]:
        return [(e.event, json.loads(e.data)["data"]["task"]["id"]) for e in self.events]

    def close(self):
        self.client.close()


def bearer(person) -> dict:
    return {"Authorization": f"Bearer {person.tokens['access']}"}


def test_each_user_hears_what_they_may_see_reassignments_included(
    client, database_url, tmp_path, admin, intern, other_intern, make_task
):
    with stream_server(database_url, tmp_path) as base:
        streams = {p.username: Listener(base, bearer(p)) for p in (admin, intern, other_intern)}
        mine = make_task(intern, "the intern's")
        theirs = make_task(admin, "the other's", assigned_to=other_intern.id)
        url = f"/api/tasks/{mine['id']}/"
        client.patch(url, json={"assigned_to": other_intern.id}, headers=admin.headers)
        client.patch(url, json={"title": "no longer the intern's"}, headers=other_intern.headers)
        assert wait_for(lambda: len(streams["admin"].events) == 4, timeout=10), {
            k: (v.status, v.events, v.done.is_set()) for k, v in streams.items()
        }
        assert wait_for(lambda: len(streams["other"].events) == 3, timeout=10)
        time.sleep(0.5)  # nothing else may arrive
        assert streams["intern"].tasks() == [
            ("task.created", mine["id"]),
            ("task.removed", mine["id"]),
        ]
        assert streams["other"].tasks() == [
            ("task.created", theirs["id"]),
            ("task.updated", mine["id"]),
            ("task.updated", mine["id"]),
        ]
        assert streams["admin"].names() == [
            "task.created",
            "task.created",
            "task.updated",
            "task.updated",
        ]
        created = json.loads(streams["intern"].events[0].data)
        assert created["type"] == "task.created"
        assert created["data"]["task"]["title"] == "the intern's"
        assert created["data"]["actor"] == intern.id and created["data"]["source"] == "api"
        removed = json.loads(streams["intern"].events[1].data)
        assert removed["type"] == "task.removed" and removed["data"]["task"] == {"id": mine["id"]}
        assert all(event.id for listener in streams.values() for event in listener.events)
        for listener in streams.values():
            listener.close()


def test_resume_after_a_restart_loses_nothing_and_repeats_nothing(
    client, database_url, tmp_path, intern, make_task
):
    with stream_server(database_url, tmp_path) as base:
        first = Listener(base, bearer(intern))
        before = [make_task(intern, f"before {i}")["id"] for i in range(2)]
        assert wait_for(lambda: len(first.events) == 2, timeout=10)
        last_id = first.events[-1].id
        first.close()
    after = [make_task(intern, f"while down {i}")["id"] for i in range(3)]
    with stream_server(database_url, tmp_path) as base:
        header = Listener(base, {**bearer(intern), "Last-Event-ID": last_id})
        query = Listener(base, bearer(intern), {"last_event_id": last_id})
        later = make_task(intern, "after restart")["id"]
        for listener in (header, query):
            assert wait_for(lambda listener=listener: len(listener.events) == 4, timeout=10)
            time.sleep(0.3)
            assert [task_id for _, task_id in listener.tasks()] == [*after, later]
            listener.close()
    assert before[0] < after[0]


def test_an_unknown_or_forged_event_id_starts_with_reset(
    client, database_url, tmp_path, intern, make_task
):
    with stream_server(database_url, tmp_path) as base:
        listener = Listener(base, {**bearer(intern), "Last-Event-ID": "not-an-id"})
        task = make_task(intern)
        assert wait_for(lambda: len(listener.events) == 2, timeout=10)
        assert listener.names() == ["reset", "task.created"]
        assert json.loads(listener.events[1].data)["data"]["task"]["id"] == task["id"]
        listener.close()


def test_a_comment_line_keeps_a_quiet_stream_alive(database_url, tmp_path, intern):
    with stream_server(database_url, tmp_path, EVENTS_HEARTBEAT_SECONDS=0.5) as base:
        lines = []
        with httpx.stream(
            "GET", base + "/api/events/", headers=bearer(intern), timeout=10
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            started = time.monotonic()
            for line in response.iter_lines():
                lines.append(line)
                if lines.count(": keep-alive") == 2:
                    break
            assert time.monotonic() - started < 5


def _logout(client, person, admin):
    response = client.post(
        "/api/auth/logout/", json={"refresh": person.tokens["refresh"]}, headers=person.headers
    )
    assert response.status_code == 204


def _deactivate(client, person, admin):
    response = client.patch(
        f"/api/users/{person.id}/", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200


def _new_password(client, person, admin):
    response = client.patch(
        f"/api/users/{person.id}/",
        json={"password": "another long passphrase"},
        headers=admin.headers,
    )
    assert response.status_code == 200


def _role_change(client, person, admin):
    response = client.patch(
        f"/api/users/{person.id}/", json={"role": "ADMIN"}, headers=admin.headers
    )
    assert response.status_code == 200


@pytest.mark.parametrize("ending", [_logout, _deactivate, _new_password, _role_change])
def test_the_stream_ends_when_its_jwt_does(client, database_url, tmp_path, admin, intern, ending):
    with stream_server(database_url, tmp_path) as base:
        listener = Listener(base, bearer(intern))
        time.sleep(0.3)
        assert not listener.done.is_set()
        ending(client, intern, admin)
        started = time.monotonic()
        assert listener.done.wait(10)
        assert time.monotonic() - started < 5
        # and the same credential cannot open a new one
        assert Listener(base, bearer(intern)).status == 401


def _pat(client, person, **fields) -> dict:
    response = client.post(
        "/api/auth/tokens/",
        json={"name": "stream", "scopes": ["tasks:read"], **fields},
        headers=person.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_the_stream_ends_when_its_personal_token_is_revoked(client, database_url, tmp_path, intern):
    token = _pat(client, intern)
    with stream_server(database_url, tmp_path) as base:
        listener = Listener(base, {"Authorization": f"Bearer {token['token']}"})
        time.sleep(0.3)
        assert listener.status == 200 and not listener.done.is_set()
        client.delete(f"/api/auth/tokens/{token['id']}/", headers=intern.headers)
        started = time.monotonic()
        assert listener.done.wait(10) and time.monotonic() - started < 5


def test_the_stream_ends_when_its_personal_token_expires(client, database_url, tmp_path, intern):
    with stream_server(database_url, tmp_path) as base:
        expires = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        token = _pat(client, intern, expires_at=expires)
        listener = Listener(base, {"Authorization": f"Bearer {token['token']}"})
        assert listener.status == 200
        assert listener.done.wait(10)


def test_a_personal_token_needs_tasks_read(client, database_url, tmp_path, intern):
    response = client.post(
        "/api/auth/tokens/", json={"name": "x", "scopes": ["logs:read"]}, headers=intern.headers
    )
    headers = {"Authorization": f"Bearer {response.get_json()['token']}"}
    assert client.post("/api/events/ticket/", headers=headers).status_code == 403
    with stream_server(database_url, tmp_path) as base:
        assert Listener(base, headers).status == 403
        assert Listener(base).status == 401


def test_a_ticket_opens_one_stream_once(client, database_url, tmp_path, intern, make_task):
    response = client.post("/api/events/ticket/", headers=intern.headers)
    assert response.status_code == 201
    ticket = response.get_json()["ticket"]
    assert ticket.startswith("tkt_") and response.get_json()["expires_at"].endswith("Z")
    with stream_server(database_url, tmp_path) as base:
        listener = Listener(base, params={"ticket": ticket})
        assert listener.status == 200
        task = make_task(intern)
        assert wait_for(lambda: listener.tasks() == [("task.created", task["id"])], timeout=10)
        again = Listener(base, params={"ticket": ticket})
        assert again.status == 401
        assert json.loads(again.body)["detail"].startswith("Invalid or expired ticket")
        assert Listener(base, params={"ticket": "tkt_forged"}).status == 401
        # the ticket's stream ends with the login that asked for it
        client.post(
            "/api/auth/logout/", json={"refresh": intern.tokens["refresh"]}, headers=intern.headers
        )
        assert listener.done.wait(5)
        listener.close()


def test_a_ticket_expires(make_app, database_url, tmp_path, intern):
    app = make_app(EVENTS_TICKET_SECONDS=1)
    ticket = (
        app.test_client().post("/api/events/ticket/", headers=intern.headers).get_json()["ticket"]
    )
    time.sleep(1.5)
    with stream_server(database_url, tmp_path) as base:
        assert Listener(base, params={"ticket": ticket}).status == 401


@only_postgresql
def test_a_commit_in_another_process_wakes_the_stream_over_redis(
    make_app, database_url, tmp_path, redis_url, intern
):
    """The stream service polls only every 30 s here: the event can only come that fast
    because the API process's commit published a wake-up on Redis."""
    app = make_app(REDIS_URL=redis_url)
    api = app.test_client()
    with stream_server(database_url, tmp_path, REDIS_URL=redis_url, EVENTS_POLL_SECONDS=30) as base:
        listener = Listener(base, bearer(intern))
        time.sleep(1)  # the hub subscribes to Redis when it starts, with the first stream
        started = time.monotonic()
        response = api.post("/api/tasks/", json={"title": "fast"}, headers=intern.headers)
        assert response.status_code == 201
        assert wait_for(lambda: listener.events, timeout=10)
        assert time.monotonic() - started < 3
        listener.close()
