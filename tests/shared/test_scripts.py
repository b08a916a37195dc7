"""The two commands on a shared machine: ./scripts/run refuses a taken port before it
touches anything and logs without colour codes; ./scripts/test says what it will wipe."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from helpers import ROOT, wait_for


def _env(**extra: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TASKAPP_", "FLASK_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        clean.pop(name, None)
    return {**clean, **extra}


def test_run_fails_on_a_taken_port_before_touching_anything(tmp_path):
    instance = tmp_path / "instance"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(ROOT / "scripts" / "run")],
            env=_env(PORT=str(port), TASKAPP_INSTANCE_DIR=str(instance)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is not free" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert not instance.exists()  # no database, no seed, no worker log


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def test_run_serves_and_logs_without_colour_codes(tmp_path):
    """Output sent to a file (not a terminal) carries no raw ANSI escape codes."""
    instance = tmp_path / "instance"
    output = tmp_path / "run.log"
    port = _free_port()
    with output.open("w") as sink:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "run")],
            env=_env(PORT=str(port), TASKAPP_INSTANCE_DIR=str(instance)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "Running on" not in _read(output):
            assert process.poll() is None, _read(output)
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.status == 200
            # Read the body, as a client does: a socket closed with its body unread is
            # reset, and the development server may then skip closing the answer, so no
            # access line is written (docs/operations.md; it failed in CI that way).
            assert answer.read()
        # The access line is written once the answer is closed, and the worker and beat
        # starting beside the server can hold the CPU a while (a fixed 1 s failed in CI).
        wait_for(lambda: "GET /healthz" in _read(output), timeout=15, interval=0.2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    text = _read(output)
    assert "GET /healthz" in text and "WARNING: This is a development server" in text
    assert "\x1b[" not in text
    assert "\x1b[" not in _read(instance / "celery.log")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def test_test_script_says_which_database_and_redis_it_wipes():
    result = subprocess.run(
        [str(ROOT / "scripts" / "test"), "--collect-only", "-q", "tests/shared/test_layout.py"],
        env=_env(
            TEST_PG_DATABASE="taskapp_test_shown",
            TEST_REDIS_URL="redis://127.0.0.1:6379/11",
            TEST_BACKENDS="sqlite",
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert 'database "taskapp_test_shown" is DROPPED' in result.stdout
    assert "redis://127.0.0.1:6379/11 is FLUSHED" in result.stdout
    assert "taskapp tests on: sqlite" in result.stdout
