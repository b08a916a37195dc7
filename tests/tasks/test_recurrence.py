"""Recurring tasks through the HTTP API and the CLI: the rule is validated, completing an
occurrence creates the next one in the same transaction, series end at COUNT/UNTIL."""

import pytest
from helpers import Api, json_column


def complete(client, person, task_id, method="patch"):
    caller, url = Api(client).as_(person), Api.task(task_id)
    if method == "put":
        current = caller.get(url).get_json()
        response = caller.put(url, json={"title": current["title"], "status": "COMPLETED"})
    else:
        response = caller.patch(url, json={"status": "COMPLETED"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def series_of(client, person, series_id) -> list[dict]:
    response = client.get(
        f"/api/tasks/?series={series_id}&ordering=due_date", headers=person.headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


@pytest.mark.parametrize(
    ("rule", "due_date", "reason"),
    [
        ("FREQ=HOURLY", "2026-01-05", "FREQ must be one of"),
        ("FREQ=FOO", "2026-01-05", "Not a valid RRULE"),
        ("FREQ=WEEKLY;BYMONTH=1", "2026-01-05", "Unsupported rule part BYMONTH"),
        ("FREQ=WEEKLY;BYSETPOS=1", "2026-01-05", "Unsupported rule part BYSETPOS"),
        ("BYDAY=MO", "2026-01-05", "Not a valid RRULE"),
        ("FREQ=WEEKLY;INTERVAL=0", "2026-01-05", "INTERVAL must be between"),
        ("FREQ=WEEKLY;COUNT=0", "2026-01-05", "COUNT must be between"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "2026-01-05", "BYMONTHDAY values"),
        ("FREQ=WEEKLY;BYDAY=XX", "2026-01-05", "invalid 'BYDAY'"),
        ("FREQ=DAILY;FREQ=WEEKLY", "2026-01-05", "only once"),
        ("FREQ=WEEKLY;;", "2026-01-05", "NAME=VALUE"),
        ("FREQ=WEEKLY\nDTSTART:20260101", "2026-01-05", "single RRULE"),
        ("FREQ=WEEKLY;UNTIL=20250101", "2026-01-05", "no date after the due date"),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=MO", "2026-01-06", "no date after the due date"),
        ("FREQ=WEEKLY", None, "needs a due_date"),
    ],
)
def test_invalid_rules_are_a_400_on_recurrence_saying_why(api, intern, rule, due_date, reason, sql):
    body = {"title": "t", "recurrence": rule, "due_date": due_date}
    response = api.as_(intern).post("/api/tasks/", json=body)
    assert response.status_code == 400
    errors = response.get_json()
    assert list(errors) == ["recurrence"]
    assert reason in errors["recurrence"][0]
    assert sql("SELECT count(*) FROM task") == [(0,)]


def test_a_rule_needs_a_due_date_on_update_too(api, intern, make_task):
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=WEEKLY")
    response = api.as_(intern).patch(api.task(task["id"]), json={"due_date": None})
    assert response.status_code == 400
    assert response.get_json() == {"recurrence": ["A recurring task needs a due_date."]}
    again = api.as_(intern).get(api.task(task["id"])).get_json()
    assert again["due_date"] == "2026-01-05"


def test_a_recurring_task_shows_its_rule_and_series(client, intern, make_task):
    task = make_task(intern, due_date="2026-01-05", recurrence="rrule:freq=weekly;byday=mo")
    assert task["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    assert task["series"] == task["id"]
    assert task["remind_at"] is None
    one_off = make_task(intern, due_date="2026-01-05")
    assert one_off["recurrence"] is None and one_off["series"] is None


def test_series_is_read_only(client, intern, make_task):
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=WEEKLY", series=999)
    assert task["series"] == task["id"]


@pytest.mark.parametrize("method", ["patch", "put"])
def test_completing_creates_the_next_occurrence(client, admin, intern, make_task, sql, method):
    task = make_task(
        admin,
        title="Weekly report",
        description="Send it to the team",
        priority="HIGH",
        due_date="2026-01-05",
        assigned_to=intern.id,
        recurrence="FREQ=WEEKLY;BYDAY=MO",
    )
    complete(client, admin, task["id"], method)
    occurrences = series_of(client, intern, task["id"])
    assert [o["due_date"] for o in occurrences] == ["2026-01-05", "2026-01-12"]
    following = occurrences[1]
    assert following["id"] != task["id"]
    for field in ("title", "description", "priority", "assigned_to", "recurrence", "series"):
        assert following[field] == task[field], field
    assert following["status"] == "PENDING"
    assert following["completed_at"] is None
    created = sql(
        "SELECT action, source, actor_id, changes FROM activity_log WHERE task_id = :id",
        id=following["id"],
    )
    assert len(created) == 1
    action, source, actor, changes = created[0]
    assert (action, source, actor) == ("CREATED", "api", admin.id)
    changes = json_column(changes)
    assert changes["due_date"] == {"from": None, "to": "2026-01-12"}
    assert changes["recurrence"] == {"from": None, "to": "FREQ=WEEKLY;BYDAY=MO"}


def test_reopening_and_completing_again_creates_no_second_occurrence(
    api, client, intern, make_task
):
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=DAILY")
    complete(client, intern, task["id"])
    reopened = api.as_(intern).patch(api.task(task["id"]), json={"status": "PENDING"})
    assert reopened.status_code == 200
    complete(client, intern, task["id"])
    assert [o["due_date"] for o in series_of(client, intern, task["id"])] == [
        "2026-01-05",
        "2026-01-06",
    ]


def test_deleting_the_next_occurrence_does_not_bring_it_back(api, client, intern, make_task):
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=DAILY")
    complete(client, intern, task["id"])
    following = series_of(client, intern, task["id"])[1]
    api.as_(intern).delete(api.task(following["id"]))
    api.as_(intern).patch(api.task(task["id"]), json={"status": "PENDING"})
    complete(client, intern, task["id"])
    assert len(series_of(client, intern, task["id"])) == 1


def complete_all(client, person, series_id, limit=20) -> list[str]:
    """Complete the open occurrence until none is left; the due dates seen."""
    for _ in range(limit):
        open_ones = [o for o in series_of(client, person, series_id) if o["status"] != "COMPLETED"]
        if not open_ones:
            break
        complete(client, person, open_ones[0]["id"])
    return [o["due_date"] for o in series_of(client, person, series_id)]


def test_count_ends_the_series_counting_the_first_task(client, intern, make_task):
    # The first due date (a Wednesday) is not a Monday: the RFC still counts it.
    task = make_task(intern, due_date="2026-01-07", recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3")
    assert complete_all(client, intern, task["id"]) == ["2026-01-07", "2026-01-12", "2026-01-19"]


def test_until_ends_the_series(client, intern, make_task):
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=WEEKLY;UNTIL=20260119")
    assert complete_all(client, intern, task["id"]) == ["2026-01-05", "2026-01-12", "2026-01-19"]


def test_until_in_utc_form_works_too(client, intern, make_task):
    rule = "FREQ=DAILY;INTERVAL=2;UNTIL=20260109T000000Z"
    task = make_task(intern, due_date="2026-01-05", recurrence=rule)
    assert complete_all(client, intern, task["id"]) == ["2026-01-05", "2026-01-07", "2026-01-09"]


def test_bymonthday_31_skips_short_months(client, intern, make_task):
    rule = "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4"
    task = make_task(intern, due_date="2026-01-31", recurrence=rule)
    assert complete_all(client, intern, task["id"]) == [
        "2026-01-31",
        "2026-03-31",
        "2026-05-31",
        "2026-07-31",
    ]


def test_bymonthday_minus_1_is_the_last_day(client, intern, make_task):
    rule = "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4"
    task = make_task(intern, due_date="2028-01-31", recurrence=rule)
    assert complete_all(client, intern, task["id"]) == [
        "2028-01-31",
        "2028-02-29",
        "2028-03-31",
        "2028-04-30",
    ]


def test_changing_the_rule_restarts_the_count_in_the_same_series(api, client, intern, make_task):
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=DAILY;COUNT=2")
    complete(client, intern, task["id"])
    second = series_of(client, intern, task["id"])[1]
    api.as_(intern).patch(
        api.task(second["id"]),
        json={"recurrence": "FREQ=WEEKLY;COUNT=2"},
    )
    assert complete_all(client, intern, task["id"]) == ["2026-01-05", "2026-01-06", "2026-01-13"]


def test_filters_by_series_and_recurrence(api, client, intern, other_intern, make_task):
    weekly = make_task(intern, due_date="2026-01-05", recurrence="FREQ=WEEKLY")
    make_task(intern, due_date="2026-01-05", recurrence="FREQ=DAILY")
    one_off = make_task(intern, due_date="2026-01-05")
    complete(client, intern, weekly["id"])

    def ids(query, person=intern):
        response = api.as_(person).get(f"/api/tasks/?{query}")
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["count"] == len(body["results"])
        return {task["id"] for task in body["results"]}

    assert len(ids(f"series={weekly['id']}")) == 2
    assert ids("recurrence__isnull=true") == {one_off["id"]}
    assert len(ids("recurrence__isnull=false")) == 3
    assert ids(f"series={weekly['id']}", other_intern) == set()
    bad = api.as_(intern).get("/api/tasks/?series=abc&recurrence__isnull=maybe")
    assert bad.status_code == 400
    assert set(bad.get_json()) == {"series", "recurrence__isnull"}


def test_clearing_the_rule_ends_the_series(api, client, intern, make_task):
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=DAILY")
    api.as_(intern).patch(api.task(task["id"]), json={"recurrence": None})
    complete(client, intern, task["id"])
    assert len(series_of(client, intern, task["id"])) == 1


def test_cli_complete_creates_the_next_occurrence(client, runner, intern, make_task, sql):
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=MONTHLY")
    result = runner.invoke(args=["tasks", "complete", str(task["id"])])
    assert result.exit_code == 0, result.output
    occurrences = series_of(client, intern, task["id"])
    assert [o["due_date"] for o in occurrences] == ["2026-01-05", "2026-02-05"]
    assert f"next occurrence is task {occurrences[1]['id']}" in result.output
    assert sql(
        "SELECT action, source FROM activity_log WHERE task_id = :id", id=occurrences[1]["id"]
    ) == [("CREATED", "cli")]
    again = runner.invoke(args=["tasks", "complete", str(task["id"])])
    assert again.exit_code != 0 and "already completed" in again.output
    missing = runner.invoke(args=["tasks", "complete", "99999"])
    assert missing.exit_code != 0 and "no task" in missing.output


def test_a_recurring_task_is_created_with_its_series_as_its_webhook_shows_it(
    client, intern, make_task, sql
):
    """The CREATED entry's snapshot, which task.created webhooks announce, is the task as
    the POST answered it: its own series, and the same updated_at and ETag version."""
    task = make_task(intern, due_date="2026-01-05", recurrence="FREQ=WEEKLY")
    [(snapshot,)] = sql(
        "SELECT task_snapshot FROM activity_log WHERE task_id = :id AND action = 'CREATED'",
        id=task["id"],
    )
    snapshot = json_column(snapshot)
    assert snapshot["series_id"] == task["id"]
    got = client.get(f"/api/tasks/{task['id']}/", headers=intern.headers)
    assert got.get_json()["updated_at"] == task["updated_at"]
    assert got.headers["ETag"] == f'"{task["id"]}-1"'
