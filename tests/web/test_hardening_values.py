"""No value silently changed: out-of-range reminders, reminders a recurrence would push
past year 9999, undecodable form values, RRULEs outside RFC 5545, control characters in
text, and ids written in other scripts' digits are all refused, never stored altered."""

import re

import pytest
from helpers import create_user

from taskapp.models import Role

FORM = "application/x-www-form-urlencoded"


def task_count(sql) -> int:
    return sql("SELECT count(*) FROM task")[0][0]


# Item 7: values out of range are 400s, not clamped.


@pytest.mark.parametrize(
    "remind_at",
    [
        "9999-12-31T23:59:59-12:00",
        "9999-12-31T23:00:00-01:00",
        "0001-01-01T00:00:00+02:00",
        "0001-01-01T01:59:59+02:00",
    ],
)
def test_a_reminder_outside_the_representable_years_is_a_400(client, admin, sql, remind_at):
    response = client.post(
        "/api/tasks/", json={"title": "t", "remind_at": remind_at}, headers=admin.headers
    )
    assert response.status_code == 400, response.get_json()
    assert list(response.get_json()) == ["remind_at"]
    assert "9999" in response.get_json()["remind_at"][0]
    assert task_count(sql) == 0


def test_the_extremes_that_fit_are_kept_exactly(client, admin):
    for given, kept in (
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ("9999-12-31T23:59:59+01:00", "9999-12-31T22:59:59Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00Z"),
    ):
        response = client.post(
            "/api/tasks/", json={"title": "t", "remind_at": given}, headers=admin.headers
        )
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["remind_at"] == kept


def test_a_recurrence_whose_next_reminder_would_overflow_is_refused(client, admin, sql):
    body = {
        "title": "t",
        "due_date": "9999-12-30",
        "recurrence": "FREQ=DAILY",
        "remind_at": "9999-12-31T12:00:00Z",
    }
    response = client.post("/api/tasks/", json=body, headers=admin.headers)
    assert response.status_code == 400
    assert list(response.get_json()) == ["recurrence"]
    assert task_count(sql) == 0
    # The same reminder on a one-off task is fine; setting the rule later is refused.
    one_off = client.post(
        "/api/tasks/", json={**body, "recurrence": None}, headers=admin.headers
    ).get_json()
    url = f"/api/tasks/{one_off['id']}/"
    patch = client.patch(url, json={"recurrence": "FREQ=DAILY"}, headers=admin.headers)
    assert patch.status_code == 400 and list(patch.get_json()) == ["recurrence"]
    assert client.get(url, headers=admin.headers).get_json()["recurrence"] is None


def test_moving_the_reminder_of_a_recurring_task_past_the_limit_is_refused(client, admin):
    body = {"title": "t", "due_date": "9999-12-30", "recurrence": "FREQ=DAILY"}
    task = client.post("/api/tasks/", json=body, headers=admin.headers).get_json()
    url = f"/api/tasks/{task['id']}/"
    patch = client.patch(url, json={"remind_at": "9999-12-31T12:00:00Z"}, headers=admin.headers)
    assert patch.status_code == 400 and list(patch.get_json()) == ["remind_at"]
    assert client.get(url, headers=admin.headers).get_json()["remind_at"] is None
    # Completing it then creates the last occurrence, reminded as before.
    fits = client.patch(url, json={"remind_at": "9999-12-30T08:00:00Z"}, headers=admin.headers)
    assert fits.status_code == 200
    done = client.patch(url, json={"status": "COMPLETED"}, headers=admin.headers)
    assert done.status_code == 200
    listing = client.get("/api/tasks/?due_date=9999-12-31", headers=admin.headers).get_json()
    assert [t["remind_at"] for t in listing["results"]] == ["9999-12-31T08:00:00Z"]


@pytest.mark.parametrize(
    "body",
    ["title=%FF%FE", "title=ok&description=%C3%28", "title=%ED%A0%80", "tit%FFle=x"],
    ids=["ff-fe", "bad-continuation", "surrogate", "bad-key"],
)
def test_an_undecodable_form_value_is_a_400(client, admin, sql, body):
    response = client.post("/api/tasks/", data=body, content_type=FORM, headers=admin.headers)
    assert response.status_code == 400, response.get_json()
    assert "UTF-8" in response.get_json()["detail"]
    assert task_count(sql) == 0


def test_a_decodable_form_value_is_kept(client, admin):
    response = client.post(
        "/api/tasks/", data="title=caf%C3%A9+%25FF", content_type=FORM, headers=admin.headers
    )
    assert response.status_code == 201
    assert response.get_json()["title"] == "café %FF"


def test_an_undecodable_form_login_is_a_400(client, admin):
    response = client.post("/api/auth/login/", data="username=%FF&password=x", content_type=FORM)
    assert response.status_code == 400


def test_an_undecodable_query_value_is_a_400(client, admin, make_task):
    make_task(admin, "\ufffd")
    response = client.get("/api/tasks/?search=%FF", headers=admin.headers)
    assert response.status_code == 400
    assert "UTF-8" in response.get_json()["detail"]


# Item 8: RRULEs strictly per RFC 5545.


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY;BYDAY=1MO",
        "FREQ=WEEKLY;BYDAY=MO,-1FR",
        "FREQ=DAILY;BYDAY=+2TU",
        "FREQ=DAILY;COUNT=3;UNTIL=20270101",
        "FREQ=MONTHLY;UNTIL=20270101T000000Z;COUNT=2",
        "FREQ=WEEKLY;BYMONTHDAY=1",
        "FREQ=MONTHLY;BYDAY=0MO",
        "FREQ=MONTHLY;BYDAY=6MO",
        "FREQ=YEARLY;BYDAY=54MO",
    ],
)
def test_rules_outside_rfc_5545_are_a_400(client, admin, sql, rule):
    body = {"title": "t", "due_date": "2026-12-01", "recurrence": rule}
    response = client.post("/api/tasks/", json=body, headers=admin.headers)
    assert response.status_code == 400, response.get_json()
    assert list(response.get_json()) == ["recurrence"]
    assert task_count(sql) == 0


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MONTHLY;BYDAY=1MO",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=YEARLY;BYDAY=20MO",
        "FREQ=WEEKLY;BYDAY=MO,FR",
        "FREQ=DAILY;COUNT=3",
        "FREQ=DAILY;UNTIL=20270101",
    ],
)
def test_the_rfc_forms_are_accepted(client, admin, rule):
    body = {"title": "t", "due_date": "2026-12-01", "recurrence": rule}
    response = client.post("/api/tasks/", json=body, headers=admin.headers)
    assert response.status_code == 201, response.get_json()


# Item 9: control characters in titles and descriptions.


@pytest.mark.parametrize("char", ["\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f"])
@pytest.mark.parametrize("field", ["title", "description"])
def test_control_characters_are_refused(client, admin, sql, make_task, char, field):
    body = {"title": "t", field: f"a{char}b"}
    response = client.post("/api/tasks/", json=body, headers=admin.headers)
    assert response.status_code == 400
    assert list(response.get_json()) == [field]
    assert "control character" in response.get_json()[field][0]
    task = make_task(admin)
    patch = client.patch(
        f"/api/tasks/{task['id']}/", json={field: f"x{char}"}, headers=admin.headers
    )
    assert patch.status_code == 400
    assert sql("SELECT count(*) FROM task WHERE title <> 'A task' OR description <> ''") == [(0,)]


def test_tab_newline_and_carriage_return_are_text(client, admin):
    body = {"title": "a\tb", "description": "line\r\nline\tend"}
    response = client.post("/api/tasks/", json=body, headers=admin.headers)
    assert response.status_code == 201
    assert response.get_json()["description"] == "line\r\nline\tend"


def test_the_spec_states_the_control_character_rule(client):
    spec = client.get("/api/openapi.json").get_json()
    write = spec["components"]["schemas"]["TaskWrite"]["properties"]
    for field, text in (("title", "a\x07b"), ("description", "a\x7fb")):
        assert not re.search(write[field]["pattern"], text), field
        assert re.search(write[field]["pattern"], "a\tb\nc"), field


# Item 10: ids in paths are ASCII digits.


@pytest.mark.parametrize(
    "digits", ["%D9%A1", "\uff11", "%EF%BC%91", "\u0967", "\U0001d7cf", "1\u0661"]
)
def test_ids_in_other_scripts_are_404_on_every_route(client, app, admin, make_task, digits):
    make_task(admin)
    routes = sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and "int(" in rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )
    assert len(routes) >= 8
    for method, rule in routes:
        path = re.sub(r"<int[^>]*>", digits, rule)
        path = re.sub(r"<[^>]+>", "1", path)
        body = {} if method in {"POST", "PUT", "PATCH"} else None
        response = client.open(path, method=method, json=body, headers=admin.headers)
        assert response.status_code == 404, (method, path, response.get_json())
    assert client.get("/api/tasks/1/", headers=admin.headers).status_code == 200


@pytest.mark.parametrize("value", ["\u0661", "\uff11"])
def test_ids_in_other_scripts_are_a_400_in_query_parameters(client, admin, value):
    for query in (f"assigned_to={value}", f"page={value}", f"page_size={value}"):
        response = client.get(f"/api/tasks/?{query}", headers=admin.headers)
        assert response.status_code == 400, query


# Item 18: the CLI lists a token without expiry as "never".


def test_cli_lists_a_token_without_expiry_as_never(app, client, runner):
    create_user(app, "cli_owner", Role.INTERN)
    from helpers import login

    access = login(client, "cli_owner")["access"]
    answer = client.post(
        "/api/auth/tokens/",
        json={"name": "nightly", "scopes": ["tasks:read"]},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert answer.status_code == 201
    listed = runner.invoke(args=["users", "tokens", "cli_owner"])
    assert listed.exit_code == 0, listed.output
    header, row = (line.split("\t") for line in listed.output.splitlines()[:2])
    token = dict(zip(header, row, strict=True))
    assert (token["EXPIRES"], token["LAST_USED"]) == ("never", "never"), listed.output
