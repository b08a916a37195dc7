"""``flask events tail``: the stream on a terminal, in its own process, while the API
writes."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).parent / "flask")


def tail(database_url: str, *args: str):
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(DATABASE_URL=database_url, FLASK_APP="wsgi", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [FLASK, "events", "tail", "--poll", "0.1", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    for line in process.stderr:  # until it says it is watching
        if line.startswith("Watching task events"):
            break
    threading.Thread(target=lambda: list(process.stderr), daemon=True).start()
    return process, lines


def test_tail_prints_what_the_user_hears_as_it_happens(
    client, database_url, admin, intern, other_intern, make_task
):
    everything, all_lines = tail(database_url)
    theirs, intern_lines = tail(database_url, "--user", "intern")
    try:
        mine = make_task(intern, "Call the plumber")
        make_task(other_intern, "not for the intern")
        client.patch(
            f"/api/tasks/{mine['id']}/",
            json={"assigned_to": other_intern.id},
            headers=admin.headers,
        )
        assert wait_for(lambda: len(all_lines) == 3, timeout=15), all_lines
        assert wait_for(lambda: len(intern_lines) == 2, timeout=15), intern_lines
        time.sleep(0.5)
        assert (
            "task.created" in intern_lines[0]
            and f"#{mine['id']} 'Call the plumber'" in intern_lines[0]
        )
        assert f"actor={intern.id} source=api" in intern_lines[0]
        assert "task.removed" in intern_lines[1] and f"#{mine['id']}" in intern_lines[1]
        assert [line.split()[1] for line in all_lines] == [
            "task.created",
            "task.created",
            "task.updated",
        ]
    finally:
        for process in (everything, theirs):
            process.terminate()
            process.wait(10)


def test_tail_of_an_unknown_user_fails(runner):
    result = runner.invoke(args=["events", "tail", "--user", "nobody"])
    assert result.exit_code == 1
    assert "no user named 'nobody'" in result.output
