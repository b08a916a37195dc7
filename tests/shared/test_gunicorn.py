"""The production server as configured by gunicorn.conf.py: proxies are trusted only when
configured, and a legitimate request never meets gunicorn's own (HTML) limits."""

import http.client
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import JWT_SECRET, PASSWORD, ROOT, create_user

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@pytest.fixture
def gunicorn(database_url, tmp_path):
    """Start gunicorn -c gunicorn.conf.py on a free port; yields (host, port)."""
    processes = []

    def start(**env_overrides: str) -> int:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TASKAPP_", "FORWARDED"))},
            "DATABASE_URL": database_url,
            "JWT_SECRET_KEY": JWT_SECRET,
            "CELERY_BROKER_URL": "memory://",
            "TASKAPP_INSTANCE_DIR": str(tmp_path),
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "8",
            "PASSWORD_HASH_PARALLELISM": "1",
            "GUNICORN_BIND": "127.0.0.1:0",
            "WEB_CONCURRENCY": "1",
            **env_overrides,
        }
        env.pop("REDIS_URL", None)
        log = tmp_path / f"gunicorn{len(processes)}.log"
        process = subprocess.Popen(
            [GUNICORN, "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        processes.append(process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
            if found and "Booting worker" in log.read_text():
                return int(found.group(1))
            if process.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"gunicorn did not start:\n{log.read_text()}")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def request(port, method, target, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, target, body=payload, headers=all_headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _token(port, username):
    status, _, body = request(
        port, "POST", "/api/auth/login/", {"username": username, "password": PASSWORD}
    )
    assert status == 200, body
    return {"Authorization": f"Bearer {json.loads(body)['access']}"}


SPOOF = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Host": "localhost",
}


def test_forwarded_headers_from_an_unconfigured_peer_change_nothing(app, gunicorn):
    """gunicorn's default trusts X-Forwarded-Proto from loopback; ours trusts nobody
    unless FORWARDED_ALLOW_IPS says so, even with TRUSTED_PROXY_COUNT set."""
    create_user(app, "boss")
    port = gunicorn(TRUSTED_PROXY_COUNT="1")
    headers = {**_token(port, "boss"), **SPOOF}
    status, answer, _ = request(port, "POST", "/api/tasks/", {"title": "t"}, headers)
    assert status == 201
    assert answer["Location"].startswith("http://"), answer["Location"]
    wrong = {"username": "boss", "password": "nope"}
    for n in range(5):
        spoofed = {**SPOOF, "X-Forwarded-For": f"198.51.100.{n}"}
        assert request(port, "POST", "/api/auth/login/", wrong, spoofed)[0] == 401
    assert request(port, "POST", "/api/auth/login/", wrong, SPOOF)[0] == 429


def test_a_configured_proxy_is_believed(app, gunicorn):
    create_user(app, "boss")
    port = gunicorn(TRUSTED_PROXY_COUNT="1", FORWARDED_ALLOW_IPS="127.0.0.1")
    status, answer, _ = request(
        port, "POST", "/api/tasks/", {"title": "t"}, {**_token(port, "boss"), **SPOOF}
    )
    assert status == 201 and answer["Location"].startswith("https://localhost/")


def test_long_request_lines_and_many_headers_reach_the_app(app, gunicorn):
    """A 7 KiB request line (gunicorn's default limit is 4 KiB) and 150 headers are
    answered by the app in JSON, not by gunicorn in HTML."""
    create_user(app, "boss")
    port = gunicorn()
    auth = _token(port, "boss")
    status, answer, body = request(port, "GET", "/api/tasks/?search=" + "x" * 7000, None, auth)
    assert status == 400 and answer["Content-Type"] == "application/json"
    assert "search" in json.loads(body)
    many = {**auth, **{f"X-Extra-{n}": "v" * 100 for n in range(150)}}
    status, answer, _ = request(port, "GET", "/api/tasks/", None, many)
    assert status == 200 and answer["Content-Type"] == "application/json"
    big_header = {**auth, "X-Trace": "t" * 8000}
    assert request(port, "GET", "/api/tasks/", None, big_header)[0] == 200
