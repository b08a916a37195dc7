"""The flask CLI, run as an operator would."""

from helpers import PASSWORD, login


def test_create_user_with_prompted_password(runner, client):
    result = runner.invoke(
        args=["users", "create", "boss", "--role", "ADMIN", "--email", "b@example.com"],
        input="a prompted password\na prompted password\n",
    )
    assert result.exit_code == 0, result.output
    assert "created user boss" in result.output
    assert "a prompted password" not in result.output
    assert login(client, "boss", "a prompted password")["access"]


def test_prompted_password_must_be_confirmed(runner):
    result = runner.invoke(
        args=["users", "create", "boss"],
        input="one password\nanother password\none password\none password\n",
    )
    assert "do not match" in result.output.lower()
    assert result.exit_code == 0


def test_create_duplicate_fails(runner):
    runner.invoke(args=["users", "create", "dup", "--password", PASSWORD])
    result = runner.invoke(args=["users", "create", "DUP", "--password", PASSWORD])
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_list_set_role_set_password_deactivate(api, runner, client, intern):
    listing = runner.invoke(args=["users", "list"])
    assert "intern\tINTERN\tactive" in listing.output

    assert runner.invoke(args=["users", "set-role", "intern", "ADMIN"]).exit_code == 0
    assert api.as_(intern).get("/api/auth/me/").status_code == 401
    assert "intern\tADMIN" in runner.invoke(args=["users", "list"]).output

    result = runner.invoke(args=["users", "set-password", "intern", "--password", "fresh password"])
    assert result.exit_code == 0
    assert login(client, "intern", "fresh password")["access"]

    assert runner.invoke(args=["users", "deactivate", "intern"]).exit_code == 0
    response = client.post(
        "/api/auth/login/", json={"username": "intern", "password": "fresh password"}
    )
    assert response.status_code == 401


def test_unknown_user_fails(runner):
    result = runner.invoke(args=["users", "deactivate", "ghost"])
    assert result.exit_code != 0 and "no user named 'ghost'" in result.output


def test_demo_seed_is_idempotent(runner, client):
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0 and "admin, intern" in first.output
    second = runner.invoke(args=["demo", "seed"])
    assert "none (already there)" in second.output
    tokens = login(client, "intern", "taskapp-demo")
    tasks = client.get("/api/tasks/", headers={"Authorization": f"Bearer {tokens['access']}"})
    assert tasks.get_json()["count"] == 5
