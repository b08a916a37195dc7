"""The CLI as an operator expects it: an unknown user is named before any prompt, every
list has column headers and ``--json``, an empty list says so, roles read ADMIN/INTERN."""

import json

LISTS = (["users", "list"], ["webhooks", "list"])


def test_unknown_user_is_reported_before_the_password_prompt(runner):
    result = runner.invoke(args=["users", "set-password", "ghost"], input="")
    assert result.exit_code == 1
    assert "no user named 'ghost'" in result.output
    assert "Password" not in result.output


def test_a_taken_username_is_reported_before_the_password_prompt(runner, intern):
    result = runner.invoke(args=["users", "create", "INTERN"], input="")
    assert result.exit_code == 1
    assert "already exists" in result.output and "Password" not in result.output


def test_empty_lists_say_so_and_json_is_an_empty_array(runner):
    assert runner.invoke(args=["users", "list"]).output == "no users\n"
    assert runner.invoke(args=["webhooks", "list"]).output == "no webhooks\n"
    for command in LISTS:
        assert json.loads(runner.invoke(args=[*command, "--json"]).output) == []


def test_users_list_has_headers_and_upper_case_roles(runner, admin, intern):
    lines = runner.invoke(args=["users", "list"]).output.splitlines()
    assert lines[0] == "ID\tUSERNAME\tROLE\tSTATE\tEMAIL\tJOINED"
    assert [line.split("\t")[2] for line in lines[1:]] == ["ADMIN", "INTERN"]
    rows = json.loads(runner.invoke(args=["users", "list", "--json"]).output)
    assert [(row["username"], row["role"]) for row in rows] == [
        ("admin", "ADMIN"),
        ("intern", "INTERN"),
    ]


def test_tokens_without_expiry_read_never(runner, client, intern):
    made = client.post(
        "/api/auth/tokens/", json={"name": "ci", "scopes": ["tasks:read"]}, headers=intern.headers
    )
    assert made.status_code == 201, made.get_json()
    lines = runner.invoke(args=["users", "tokens", "intern"]).output.splitlines()
    assert lines[0] == "ID\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST_USED"
    fields = dict(zip(lines[0].split("\t"), lines[1].split("\t"), strict=True))
    assert fields["NAME"] == "ci" and fields["EXPIRES"] == "never"
    rows = json.loads(runner.invoke(args=["users", "tokens", "intern", "--json"]).output)
    assert rows[0]["expires"] is None and rows[0]["scopes"] == "tasks:read"


def test_a_user_without_tokens_is_told_so(runner, intern):
    result = runner.invoke(args=["users", "tokens", "intern"])
    assert result.output == "intern has no personal access tokens\n"


def test_deliveries_of_a_quiet_webhook_say_so(runner, client, intern):
    hook = client.post(
        "/api/webhooks/",
        json={"url": "https://example.com/hook", "events": ["task.created"]},
        headers=intern.headers,
    )
    assert hook.status_code == 201, hook.get_json()
    hook_id = hook.get_json()["id"]
    result = runner.invoke(args=["webhooks", "deliveries", str(hook_id)])
    assert result.output == f"webhook {hook_id} has no deliveries\n"
    assert runner.invoke(args=["webhooks", "deliveries", str(hook_id), "--json"]).output == "[]\n"
