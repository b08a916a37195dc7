"""Logs as an operator reads them: JSON lines from gunicorn, the app, the Celery worker
and beat (real processes, production settings), the access line written by the app with
the route's rule, no secret anywhere, and quiet by default."""

import http.client
import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import redis
from helpers import PASSWORD, bearer, create_user
from receiver import Receiver
from services import PRODUCTION, ROOT, Processes, json_lines, wait_until

from taskapp.models import Role

pytestmark = pytest.mark.services
LINE_FIELDS = {"ts", "level", "logger", "msg", "request_id"}
ACCESS_FIELDS = {"method", "route", "status", "duration_ms", "user_id", "client"}
NEW_PASSWORD = "a brand new passphrase 42"
WRONG_PASSWORD = "not-the-password-but-secret-too"
QUERY_SECRET = "qs-secret-0d1e2f3a4b5c"
SHUTDOWN_NOTICE = re.compile(r"\s*worker: (Warm|Cold) shutdown")


@pytest.fixture
def processes(tmp_path, database_url, redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    running = Processes(
        tmp_path, {**PRODUCTION, "DATABASE_URL": database_url, "CELERY_BROKER_URL": redis_url}
    )
    yield running
    running.stop()


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


class Client:
    """HTTP/1.1 to the server; remembers every answer's request id and status."""

    def __init__(self, port: int):
        self.port = port
        self.answers: list[tuple[str, str, int, str]] = []

    def call(self, method, path, body=None, headers=None, form=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload, content_type = None, {}
            if body is not None and form:
                payload = "&".join(f"{k}={v}" for k, v in body.items()).encode()
                content_type = {"Content-Type": "application/x-www-form-urlencoded"}
            elif body is not None:
                payload = json.dumps(body).encode()
                content_type = {"Content-Type": "application/json"}
            conn.request(method, path, body=payload, headers={**content_type, **(headers or {})})
            response = conn.getresponse()
            data = response.read()
            request_id = response.getheader("X-Request-ID")
            self.answers.append((method, path, response.status, request_id))
            try:
                parsed = json.loads(data) if data else None
            except ValueError:
                parsed = data
            return response.status, parsed
        finally:
            conn.close()

    def login(self, username, password=PASSWORD) -> dict:
        status, body = self.call(
            "POST", "/api/auth/login/", {"username": username, "password": password}
        )
        assert status == 200, body
        return body


ENDLESS = {("/api/events/", "GET")}
"""The event stream never ends by itself (tests/events reads it, with its credentials
checked in tests/events/test_event_stream.py); the walk leaves it out."""


def _rules(app) -> list[tuple[str, str, str, list[str]]]:
    """(endpoint, method, rule, argument names) of every route the app serves."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (rule.rule, method) in ENDLESS:
                continue
            found.append((rule.endpoint, method, rule.rule, sorted(rule.arguments)))
    return found


def _fill(rule: str, values: dict) -> str:
    return re.sub(r"<(?:[^<>:]+:)?([^<>:]+)>", lambda m: str(values[m.group(1)]), rule)


BODIES = {
    ("auth.Login", "POST"): lambda s: {"username": "boss", "password": PASSWORD},
    ("auth.Refresh", "POST"): lambda s: {"refresh": s["refresh"]},
    ("auth.Logout", "POST"): lambda s: {"refresh": s["spare_refresh"]},
    ("auth.Tokens", "POST"): lambda s: {"name": "walk", "scopes": ["tasks:read"]},
    ("users.Users", "POST"): lambda s: {"username": "walker", "password": NEW_PASSWORD},
    ("users.UserById", "PATCH"): lambda s: {"password": NEW_PASSWORD},
    ("tasks.Tasks", "POST"): lambda s: {"title": "walked"},
    ("tasks.TaskById", "PUT"): lambda s: {"title": "walked again"},
    ("tasks.TaskById", "PATCH"): lambda s: {"description": "patched"},
    ("webhooks.Webhooks", "POST"): lambda s: {"url": s["receiver"] + "/second"},
    ("webhooks.WebhookById", "PATCH"): lambda s: {"description": "patched"},
}
AUTH = {
    ("auth.Logout", "POST"): "spare_access",
    ("auth.TokenById", "DELETE"): "access",
    ("users.UserById", "PATCH"): "access",
}


def _credentials(client, receiver, worker, intern_id) -> tuple[dict, dict, dict]:
    """Real credentials of every kind, and ids for every path parameter; returns
    (secrets, path values, the doomed task a DELETE may remove)."""
    pair = client.login("boss")
    spare = client.login("boss")
    intern = client.login("intern")
    admin = bearer(pair["access"])
    secrets = {
        "password": PASSWORD,
        "access": pair["access"],
        "refresh": pair["refresh"],
        "spare_access": spare["access"],
        "spare_refresh": spare["refresh"],
        "intern_access": intern["access"],
        "intern_refresh": intern["refresh"],
        "jwt_key": PRODUCTION["JWT_SECRET_KEY"],
        "webhook_key": PRODUCTION["WEBHOOK_SECRET_KEY"],
        "new_password": NEW_PASSWORD,
        "wrong_password": WRONG_PASSWORD,
        "query_secret": QUERY_SECRET,
    }
    status, pat = client.call(
        "POST", "/api/auth/tokens/", {"name": "ci", "scopes": ["tasks:read"]}, admin
    )
    assert status == 201, pat
    secrets["pat"] = pat["token"]
    status, hook = client.call(
        "POST", "/api/webhooks/", {"url": receiver.url("/hook"), "events": ["task.created"]}, admin
    )
    assert status == 201, hook
    receiver.trust("/hook", hook["secret"])
    secrets["webhook_secret"] = hook["secret"]
    status, feed = client.call("POST", "/api/auth/calendar-feed/", None, admin)
    assert status == 200, feed
    secrets["feed"] = feed["url"].rsplit("/", 1)[1].removesuffix(".ics")
    status, task = client.call("POST", "/api/tasks/", {"title": "first"}, admin)
    assert status == 201
    assert wait_until(lambda: receiver.requests, timeout=30), worker.log.read_text()[-3000:]
    status, doomed = client.call("POST", "/api/tasks/", {"title": "doomed"}, admin)
    status, deliveries = client.call("GET", f"/api/webhooks/{hook['id']}/deliveries/", None, admin)
    status, entries = client.call("GET", "/api/activity-logs/", None, admin)
    status, spare_pat = client.call(
        "POST", "/api/auth/tokens/", {"name": "spare", "scopes": ["tasks:read"]}, admin
    )
    secrets["spare_pat"] = spare_pat["token"]
    values = {
        "task_id": task["id"],
        "user_id": intern_id,
        "token_id": spare_pat["id"],
        "webhook_id": hook["id"],
        "delivery_id": deliveries["results"][0]["id"],
        "entry_id": entries["results"][0]["id"],
        "secret": secrets["feed"],
        "filename": "swagger-ui.css",
    }
    return secrets, values, doomed


def _walk_every_route(app, client, secrets, values, doomed, receiver) -> set:
    """Every route of the URL map, with real credentials; returns the rules called."""
    routes = _rules(app)
    routes.sort(key=lambda r: (r[1] == "DELETE" or r[0] == "auth.Logout", r[0] == "auth.Refresh"))
    called = set()
    for endpoint, method, rule, _arguments in routes:
        path = _fill(rule, {**values, "task_id": doomed["id"]} if method == "DELETE" else values)
        if method == "GET":
            path += f"?leak={QUERY_SECRET}"
        make_body = BODIES.get((endpoint, method), lambda s: None)
        body = make_body({**secrets, "receiver": receiver.base_url})
        headers = bearer(secrets[AUTH.get((endpoint, method), "access")])
        status, answer = client.call(method, path, body, headers)
        assert status < 500, (endpoint, method, status, answer)
        if isinstance(answer, dict) and "secret" in answer:
            secrets[f"{endpoint}-secret"] = answer["secret"]
        if isinstance(answer, dict) and "token" in answer:
            secrets[f"{endpoint}-token"] = answer["token"]
        if isinstance(answer, dict) and "refresh" in answer:
            secrets[f"{endpoint}-refresh"] = answer["refresh"]
            secrets[f"{endpoint}-access"] = answer["access"]
        called.add(rule)
    return called


def _misuse(client, secrets) -> None:
    """Credentials where they do not belong, and failures, must not leak either."""
    client.call("GET", "/api/tasks/", None, bearer(secrets["pat"]))
    client.call("POST", "/api/auth/login/", {"username": "boss", "password": WRONG_PASSWORD})
    client.call(
        "POST", "/api/auth/login/", {"username": "intern", "password": WRONG_PASSWORD}, form=True
    )
    client.call("POST", "/api/auth/refresh/", {"refresh": secrets["refresh"]})  # reused: 401
    client.call("GET", "/api/tasks/", None, bearer(secrets["access"] + "x"))
    client.call("GET", f"/api/auth/calendar-feed/{secrets['feed']}x.ics")
    client.call("GET", f"/api/tasks/?token={secrets['pat']}", None, bearer(secrets["pat"]))


def _assert_json_lines_without_secrets(logs, secrets) -> None:
    for name, text in logs.items():
        for key, secret in secrets.items():
            assert secret not in text, f"{key} found in {name}"
        # every line is one JSON object (the worker's banner is off with --quiet); Celery
        # prints its shutdown notice itself, not through logging
        for line in text.splitlines():
            if line.strip() and not SHUTDOWN_NOTICE.match(line):
                assert line.startswith("{"), (name, line)
        for record in json_lines(text):
            assert set(record) >= LINE_FIELDS, (name, record)
            assert datetime.fromisoformat(record["ts"]).utcoffset().total_seconds() == 0
            assert record["ts"].endswith("Z")


def _assert_access_lines(access, client, called, admin_id) -> None:
    by_id = {r["request_id"]: r for r in access}
    for method, _path, status, request_id in client.answers:
        record = by_id[request_id]
        assert set(record) >= ACCESS_FIELDS
        assert (record["method"], record["status"]) == (method, status)
        assert record["client"] == "127.0.0.1"
        assert isinstance(record["duration_ms"], float | int) and record["duration_ms"] >= 0
    seen_routes = {r["route"] for r in access}
    normalized = {re.sub(r"<(?:[^<>:]+:)?([^<>:]+)>", r"<\1>", rule) for rule in called}
    assert normalized <= seen_routes
    assert "/api/auth/calendar-feed/<secret>.ics" in seen_routes
    assert "/api/tasks/<task_id>/" in seen_routes
    mine = [r for r in access if r["route"] == "/api/tasks/" and r["method"] == "POST"]
    assert mine and {r["user_id"] for r in mine} == {admin_id}
    logins = [r for r in access if r["route"] == "/api/auth/login/"]
    assert {r["user_id"] for r in logins} == {None}


def test_every_line_is_json_and_no_secret_reaches_any_log(app, processes, receiver):
    """Every route of the URL map is called with real credentials (JWTs, refresh
    tokens, a personal token, webhook secrets, the calendar feed's secret, passwords);
    then every line gunicorn, the app, the worker and beat wrote is read."""
    admin_id = create_user(app, "boss", Role.ADMIN)
    intern_id = create_user(app, "intern", Role.INTERN)
    worker = processes.celery("worker")
    beat = processes.celery("beat", REMINDER_SWEEP_INTERVAL_SECONDS="1")
    gunicorn, port = processes.gunicorn()
    client = Client(port)
    secrets, values, doomed = _credentials(client, receiver, worker, intern_id)
    called = _walk_every_route(app, client, secrets, values, doomed, receiver)
    _misuse(client, secrets)
    time.sleep(1.5)  # the worker relays and delivers what the walk changed
    for process in (gunicorn, worker, beat):
        process.terminate()
        process.wait(timeout=20)

    logs = {p.log.name: p.log.read_text() for p in (gunicorn, worker, beat)}
    _assert_json_lines_without_secrets(logs, secrets)
    access = [r for r in json_lines(logs[gunicorn.log.name]) if r["logger"] == "taskapp.access"]
    _assert_access_lines(access, client, called, admin_id)
    worker_lines = json_lines(logs[worker.log.name])
    jobs = [r for r in worker_lines if r["logger"] == "taskapp.jobs"]
    delivered = [r for r in jobs if r.get("job") == "taskapp.deliver_webhook"]
    first_tries = [r for r in worker_lines if "first try" in r["msg"]]  # the senders' lines
    assert delivered or first_tries, logs[worker.log.name][-3000:]
    for record in [r for r in jobs if "job" in r]:
        assert {"job", "job_id", "duration_ms", "outcome"} <= set(record)
        assert record["outcome"] in {"success", "failure", "retry"}
    assert any("Sending due task" in r["msg"] for r in json_lines(logs[beat.log.name]))


def test_lines_written_while_serving_carry_the_request_id(app, processes):
    """A warning the app writes during a request (here: the rate-limit store is
    unreachable, so the login limit falls back to memory) carries that request's id."""
    create_user(app, "boss", Role.ADMIN)
    gunicorn, port = processes.gunicorn(REDIS_URL="redis://127.0.0.1:9/0", WEB_CONCURRENCY="1")
    client = Client(port)
    status, _ = client.call(
        "POST",
        "/api/auth/login/",
        {"username": "boss", "password": PASSWORD},
        {"X-Request-ID": "trace-me-1"},
    )
    assert status == 200
    gunicorn.terminate()
    gunicorn.wait(timeout=20)
    records = [r for r in json_lines(gunicorn.log.read_text()) if r["request_id"] == "trace-me-1"]
    assert {r["logger"] for r in records} >= {"taskapp.access"}
    assert any(r["level"] == "WARNING" for r in records), records


def test_text_format_in_the_embedded_mode(tmp_path, database_url):
    """Unset LOG_FORMAT outside production is text, the request id in each line, the
    route's rule in the access line and never the raw path."""
    env = Processes(tmp_path, {"DATABASE_URL": database_url})._env(
        {"CELERY_BROKER_URL": "memory://", "JWT_SECRET_KEY": PRODUCTION["JWT_SECRET_KEY"]}
    )
    code = (
        "from wsgi import app\n"
        "answer = app.test_client().get('/api/auth/calendar-feed/s3cr3t-in-path.ics',"
        " headers={'X-Request-ID': 'txt-1'})\n"
        "answer.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    lines = [line for line in result.stderr.splitlines() if "taskapp.access" in line]
    assert lines and "txt-1" in lines[0], result.stderr
    assert "GET /api/auth/calendar-feed/<secret>.ics 404" in lines[0]
    assert "s3cr3t-in-path" not in result.stderr + result.stdout
    assert not result.stderr.lstrip().startswith("{")


def test_cli_commands_are_quiet(tmp_path, database_url):
    """No alembic plugin chatter on every ``flask`` command."""
    env = Processes(tmp_path, {"DATABASE_URL": database_url})._env({})
    flask = str(Path(sys.executable).parent / "flask")
    result = subprocess.run(
        [flask, "--app", "wsgi", "users", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "alembic" not in result.stderr + result.stdout
    assert result.stderr == ""


def test_an_idle_worker_and_beat_write_no_line_per_tick(processes):
    worker = processes.celery("worker", WEBHOOK_RELAY_INTERVAL_SECONDS="0.2")
    beat = processes.celery("beat", WEBHOOK_RELAY_INTERVAL_SECONDS="0.2")
    before = worker.log.read_text().count("\n"), beat.log.read_text().count("\n")
    time.sleep(4)  # some 20 ticks
    after = worker.log.read_text().count("\n"), beat.log.read_text().count("\n")
    grown = (after[0] - before[0], after[1] - before[1])
    assert grown[0] <= 2 and grown[1] <= 2, (worker.log.read_text(), beat.log.read_text())
