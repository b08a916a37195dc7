"""A client generated from the OpenAPI document by openapi-python-client works as
generated, with no workaround: it logs in, creates, lists, patches and logs out against
a real server, and every answer parses into the generated models (which requires the
answers' always-present fields to be marked required, typed enums, an operationId per
operation)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import PASSWORD, serve

DRIVER = """
import sys
from http import HTTPStatus

from taskapp_client import AuthenticatedClient, Client
from taskapp_client.api.auth import get_me, post_login, post_logout
from taskapp_client.api.tasks import get_tasks, patch_task_by_id, post_tasks
from taskapp_client.models import (
    Login, Refresh, Task, TaskPage, TaskPatch, TaskPatchStatus, TaskStatus, TaskWrite,
    TaskWritePriority, TokenPair,
)

base, username, password = sys.argv[1:]
pair = post_login.sync(client=Client(base_url=base), body=Login(username, password))
assert isinstance(pair, TokenPair), pair
client = AuthenticatedClient(base_url=base, token=pair.access)

created = post_tasks.sync_detailed(
    client=client, body=TaskWrite(title="Generated", priority=TaskWritePriority.HIGH)
)
assert created.status_code == HTTPStatus.CREATED, created.content
task = created.parsed
assert isinstance(task, Task) and task.title == "Generated" and task.due_date is None
assert task.created_at.tzinfo is not None and task.completed_at is None

page = get_tasks.sync(client=client, priority="HIGH", ordering="-created_at")
assert isinstance(page, TaskPage), page
assert page.count == 1 and page.next_ is None and page.results[0].id == task.id

patched = patch_task_by_id.sync_detailed(
    task.id, client=client, body=TaskPatch(status=TaskPatchStatus.COMPLETED),
    if_match=created.headers["ETag"],
)
assert patched.status_code == HTTPStatus.OK, patched.content
assert patched.parsed.status == TaskStatus.COMPLETED and patched.parsed.completed_at

out = post_logout.sync_detailed(client=client, body=Refresh(pair.refresh))
assert out.status_code == HTTPStatus.NO_CONTENT, out.content
after = get_me.sync_detailed(client=client)
assert after.status_code == HTTPStatus.UNAUTHORIZED and after.parsed.code == "token_not_valid"
print("ok")
"""


def _generate(spec: dict, where: Path) -> None:
    (where / "openapi.json").write_text(json.dumps(spec))
    generator = Path(sys.executable).parent / "openapi-python-client"
    env = {**os.environ, "PATH": f"{generator.parent}{os.pathsep}{os.environ['PATH']}"}
    command = [str(generator), "generate", "--path", "openapi.json", "--meta", "none"]
    command += ["--output-path", "taskapp_client"]
    result = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_generated_client_logs_in_creates_lists_patches_and_logs_out(app, client, intern, tmp_path):
    _generate(client.get("/api/openapi.json").get_json(), tmp_path)
    (tmp_path / "drive.py").write_text(DRIVER)
    with serve(app) as base:
        result = subprocess.run(
            [sys.executable, "drive.py", base, intern.username, PASSWORD],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
