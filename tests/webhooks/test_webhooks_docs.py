"""What the README and docs/webhooks.md tell a new user to do works as written: the
README's receiver (run as a real Flask app) answers a ping and a task event, the 400 for
a refused address says which setting allows it, and the recurrence walk-through (run
with bash and curl against a real server) uses the ids it just created."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from helpers import serve, wait_for
from test_webhooks_delivery import deliveries

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

# The fixtures of the delivery tests (a real worker, real Redis).


def block_after(heading: str, language: str) -> str:
    """The first fenced ``language`` block after ``heading`` in the README."""
    rest = README[README.index(heading) :]
    return re.search(rf"```{language}\n(.*?)```", rest, re.S).group(1)


@pytest.fixture
def app(make_app):
    return make_app(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])


@pytest.mark.services
def test_the_readme_receiver_answers_a_ping_and_a_task_event(
    client, start_worker, redis_broker, admin, make_task, tmp_path, monkeypatch
):
    answer = client.post(
        "/api/webhooks/", json={"url": "http://127.0.0.1:1/taskapp"}, headers=admin.headers
    )
    hook = answer.get_json()
    code = block_after("Receiving one", "python").replace("whsec_...", hook["secret"])
    path = tmp_path / "receiver_from_readme.py"  # saved to a file, as the README says
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("receiver_from_readme", path)
    receiver = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "receiver_from_readme", receiver)  # Flask looks it up
    spec.loader.exec_module(receiver)
    assert isinstance(receiver.app, Flask)
    with serve(receiver.app) as base:
        patched = client.patch(
            f"/api/webhooks/{hook['id']}/",
            json={"url": f"{base}/taskapp"},
            headers=admin.headers,
        )
        assert patched.status_code == 200, patched.get_json()
        worker = start_worker(redis_broker)
        ping = client.post(f"/api/webhooks/{hook['id']}/ping/", headers=admin.headers)
        assert ping.status_code == 202
        make_task(admin, title="seen by the README's receiver")

        def both_done():
            found = deliveries(client, admin, hook)
            return len(found) == 2 and all(d["status"] != "pending" for d in found) and found

        found = wait_for(both_done, 30)
        assert found, (deliveries(client, admin, hook), worker.log.read_text()[-2000:])
    assert {(d["event"], d["status"], d["last_status_code"], d["attempts"]) for d in found} == {
        ("webhook.ping", "succeeded", 204, 1),  # at the first attempt
        ("task.created", "succeeded", 204, 1),
    }


def test_a_refused_address_names_the_setting_that_allows_it(make_app, make_person):
    client = make_app().test_client()
    person = make_person("dev")
    answer = client.post(
        "/api/webhooks/", json={"url": "http://127.0.0.1:8000/taskapp"}, headers=person.headers
    )
    assert answer.status_code == 400
    [message] = answer.get_json()["url"]
    assert "127.0.0.1" in message and "WEBHOOK_ALLOWED_NETWORKS" in message


def test_the_recurrence_walkthrough_uses_the_ids_it_created(
    app, client, admin, make_task, database_url, tmp_path
):
    for n in range(3):  # ids of tasks that are not the walk-through's
        make_task(admin, title=f"earlier {n}")
    script = block_after("**A weekly task.**", "sh")
    with serve(app) as base:
        env = {
            **os.environ,
            "base": base,
            "auth": f"Authorization: {admin.headers['Authorization']}",
            "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
            "FLASK_APP": "wsgi",
            "DATABASE_URL": database_url,
            "TASKAPP_INSTANCE_DIR": str(tmp_path),
        }
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    series = client.get(
        "/api/tasks/?search=Weekly report&ordering=due_date&page_size=10", headers=admin.headers
    ).get_json()["results"]
    assert [(t["due_date"], t["status"]) for t in series] == [
        ("2026-12-07", "COMPLETED"),
        ("2026-12-14", "COMPLETED"),
        ("2026-12-21", "PENDING"),
    ]
    assert len({t["series"] for t in series}) == 1
