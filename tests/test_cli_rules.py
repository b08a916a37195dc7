"""The CLI enforces what the API enforces, finds its instance folder wherever it is run
from, and says "run flask db upgrade" on a database without the schema."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import PASSWORD

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "args,problem",
    [
        (["carol", "--password", "short"], "password: Length must be between 8 and 1024."),
        (["has space", "--password", PASSWORD], "username: Enter a valid username"),
        (["", "--password", PASSWORD], "username: Enter a valid username"),
        (["admin\n", "--password", PASSWORD], "username: Enter a valid username"),
        (["dave", "--email", "not-an-email", "--password", PASSWORD], "email: Not a valid email"),
        (["erin", "--email", "a@x\ud800.io", "--password", PASSWORD], "email: Not valid Unicode"),
    ],
)
def test_create_refuses_what_the_api_refuses(runner, client, args, problem):
    result = runner.invoke(args=["users", "create", *args])
    assert result.exit_code == 1, result.output
    assert problem in result.output
    assert runner.invoke(args=["users", "list", "--json"]).output == "[]\n"
    empty = client.post("/api/auth/login/", json={"username": args[0], "password": PASSWORD})
    assert empty.status_code in (400, 401)


def test_set_password_refuses_a_short_one(runner, intern, client):
    result = runner.invoke(args=["users", "set-password", "intern", "--password", "short"])
    assert result.exit_code == 1
    assert "password: Length must be between 8 and 1024." in result.output
    assert (
        client.post(
            "/api/auth/login/", json={"username": "intern", "password": PASSWORD}
        ).status_code
        == 200
    )


def test_instance_folder_does_not_depend_on_the_current_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"TASKAPP_INSTANCE_DIR", "DATABASE_URL"}}
    env["PYTHONPATH"] = str(ROOT)
    code = "from taskapp.config import load_config; print(load_config()['SQLALCHEMY_DATABASE_URI'])"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.stdout.strip() == f"sqlite:///{ROOT / 'instance' / 'taskapp.sqlite'}"
    assert not (tmp_path / "instance").exists()


@pytest.fixture
def unmigrated_url(backend, database_url, tmp_path):
    """A database where the schema was never created."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite'}"
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS unmigrated CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA unmigrated"))
    engine.dispose()
    return database_url + "?options=-csearch_path%3Dunmigrated"


@pytest.mark.parametrize(
    "args",
    [
        ["users", "list"],
        ["users", "create", "x", "--password", PASSWORD],
        ["tasks", "mark-overdue"],
    ],
)
def test_unmigrated_database_says_run_db_upgrade(make_app, unmigrated_url, args):
    runner = make_app(SQLALCHEMY_DATABASE_URI=unmigrated_url).test_cli_runner()
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert "run `flask db upgrade`" in result.output
    assert "Traceback" not in result.output
