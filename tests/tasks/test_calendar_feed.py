"""The secret calendar feed: parsed with vobject (independent of the icalendar package
that builds it), every field checked; auth by secret; ETag and 304."""

from datetime import date, datetime, time

import pytest
import vobject
from helpers import PASSWORD


def feed_url(client, person) -> str:
    response = client.post("/api/auth/calendar-feed/", headers=person.headers)
    assert response.status_code == 200, response.get_json()
    url = response.get_json()["url"]
    assert url.startswith("http://localhost/api/auth/calendar-feed/") and url.endswith(".ics")
    return url.removeprefix("http://localhost")


def instant(text: str) -> datetime:
    """An API timestamp as iCalendar carries it (whole seconds, UTC)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(microsecond=0)


def parse(response) -> dict:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = vobject.readOne(response.get_data(as_text=True))
    assert calendar.version.value == "2.0"
    return {todo.uid.value: todo for todo in getattr(calendar, "vtodo_list", [])}


@pytest.fixture
def feed(app, api, client, admin, intern, other_intern, make_task) -> dict:
    """A weekly series (its first occurrence completed), a started, a done and an
    undated task of the intern's, one of someone else's; the intern's tasks as the API
    lists them and the intern's feed, parsed."""
    weekly = make_task(
        admin,
        title="Weekly report",
        description="Line one\nLine two; with, punctuation",
        priority="HIGH",
        due_date="2026-01-05",
        assigned_to=intern.id,
        recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4",
    )
    started = make_task(intern, title="Started", priority="LOW", due_date="2026-02-01")
    api.as_(intern).patch(api.task(started["id"]), json={"status": "IN_PROGRESS"})
    done = make_task(intern, title="Done", due_date="2026-01-02")
    done = api.as_(intern).patch(api.task(done["id"]), json={"status": "COMPLETED"}).get_json()
    make_task(intern, title="No due date")
    make_task(other_intern, title="Someone else's", due_date="2026-01-05")
    api.as_(intern).patch(api.task(weekly["id"]), json={"status": "COMPLETED"})
    listed = api.as_(intern).get("/api/tasks/?page_size=100").get_json()["results"]
    tasks = {task["id"]: task for task in listed}
    todos = parse(client.get(feed_url(client, intern)))
    domain = app.config["CALENDAR_UID_DOMAIN"]
    return {"tasks": tasks, "todos": todos, "weekly": weekly, "done": done, "domain": domain}


def assert_todo_is_the_task(todo, task: dict) -> None:
    assert todo.summary.value == task["title"]
    assert todo.description.value == task["description"]
    due = date.fromisoformat(task["due_date"])
    is_open_occurrence = task["recurrence"] and not task["completed_at"]
    if is_open_occurrence:  # the rule, on a floating span of its due day
        assert todo.due.value == datetime.combine(due, time(23, 59, 59))
        assert todo.dtstart.value == datetime.combine(due, time())
    else:
        assert todo.due.value == due
        assert not isinstance(todo.due.value, datetime)
    expected_status = {"PENDING": "NEEDS-ACTION", "IN_PROGRESS": "IN-PROCESS"}
    assert todo.status.value == expected_status.get(task["status"], task["status"])
    assert todo.priority.value == {"HIGH": "1", "MEDIUM": "5", "LOW": "9"}[task["priority"]]
    assert todo.last_modified.value == instant(task["updated_at"])
    assert todo.dtstamp.value == instant(task["updated_at"])
    assert todo.created.value == instant(task["created_at"])
    if task["completed_at"]:
        assert todo.completed.value == instant(task["completed_at"])
    else:
        assert not hasattr(todo, "completed")
    if is_open_occurrence:
        assert todo.rrule.value.startswith("FREQ=WEEKLY")
    else:
        assert not hasattr(todo, "rrule")


def test_feed_has_one_vtodo_per_visible_task_with_every_field(feed):
    domain = feed["domain"]
    with_due = {tid: task for tid, task in feed["tasks"].items() if task["due_date"]}
    assert set(feed["todos"]) == {f"task-{tid}@{domain}" for tid in with_due}
    for task_id, task in with_due.items():
        assert_todo_is_the_task(feed["todos"][f"task-{task_id}@{domain}"], task)
    assert feed["todos"][f"task-{feed['done']['id']}@{domain}"].status.value == "COMPLETED"


def test_feed_rules_count_what_is_left_and_expand_as_the_series(feed):
    todos, weekly, domain = feed["todos"], feed["weekly"], feed["domain"]
    first = todos[f"task-{weekly['id']}@{domain}"]
    assert not hasattr(first, "rrule")  # completed: the next occurrence carries the rule
    second_id = next(t for t, task in feed["tasks"].items() if t != weekly["id"] and task["series"])
    second = todos[f"task-{second_id}@{domain}"]
    assert "COUNT=3" in second.rrule.value  # the occurrences left from this one
    assert "BYDAY=MO" in second.rrule.value
    assert second.due.value.date() == date(2026, 1, 12)
    # The rule expands the same way as the API's series does (vobject uses dateutil too).
    assert [d.date() for d in second.getrruleset(addRDate=True)] == [
        date(2026, 1, 12),
        date(2026, 1, 19),
        date(2026, 1, 26),
    ]


def test_admin_feed_sees_every_task_with_a_due_date(client, admin, intern, make_task):
    make_task(intern, due_date="2026-01-05")
    make_task(admin, due_date="2026-01-06")
    assert len(parse(client.get(feed_url(client, admin)))) == 2


def test_etag_and_304_in_one_query_changes_with_writes_and_deletions(
    api, client, intern, make_task, count_queries
):
    task = make_task(intern, due_date="2026-01-05")
    other = make_task(intern, due_date="2026-01-06")
    url = feed_url(client, intern)
    first = client.get(url)
    etag = first.headers["ETag"]
    with count_queries() as statements:
        unchanged = client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == etag
    assert len(statements) == 1
    api.as_(intern).patch(api.task(task["id"]), json={"title": "renamed"})
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert any(todo.summary.value == "renamed" for todo in parse(changed).values())
    etag = changed.headers["ETag"]
    api.as_(intern).delete(api.task(other["id"]))
    after_delete = client.get(url, headers={"If-None-Match": etag})
    assert after_delete.status_code == 200
    assert len(parse(after_delete)) == 1


def test_rotation_kills_the_old_url_and_bad_secrets_are_404(client, intern, make_task):
    make_task(intern, due_date="2026-01-05")
    old = feed_url(client, intern)
    new = feed_url(client, intern)
    assert old != new
    assert client.get(new).status_code == 200
    gone = client.get(old)
    assert gone.status_code == 404 and "detail" in gone.get_json()
    assert client.get("/api/auth/calendar-feed/not-a-secret.ics").status_code == 404
    assert client.get("/api/auth/calendar-feed/" + "x" * 500 + ".ics").status_code == 404
    assert client.post("/api/auth/calendar-feed/").status_code == 401


def test_the_feed_dies_with_deactivation_role_or_password_change(
    api, client, admin, make_person, make_task
):
    def user_patch(person, body):
        response = api.as_(admin).patch(f"/api/users/{person.id}/", json=body)
        assert response.status_code == 200, response.get_json()

    for n, change in enumerate(
        [{"is_active": False}, {"role": "ADMIN"}, {"password": PASSWORD + "!"}]
    ):
        person = make_person(f"feeduser{n}")
        make_task(person, due_date="2026-01-05")
        url = feed_url(client, person)
        assert client.get(url).status_code == 200
        user_patch(person, change)
        assert client.get(url).status_code == 404, change


def test_long_text_with_escapes_and_non_ascii_round_trips_exactly(app, client, intern, make_task):
    """Folding and TEXT escaping: every physical line fits in 75 octets, a fold never
    splits a UTF-8 character or an escape, and vobject reads back the exact text."""
    paragraph = (
        "Réunion: café, crème; naïve \\ déjà-vu — 日本語のメモ, ✓ done; 🙂 emoji,\n"
        'second line; with, commas and "quotes"\n\n'
    )
    description = paragraph * 12
    title = "Ünïcödé title; with, separators — " + "ß" * 40
    task = make_task(intern, title=title, description=description, due_date="2026-03-01")
    assert task["description"] == description

    response = client.get(feed_url(client, intern))
    lines = response.get_data().split(b"\r\n")
    assert b"DUE;VALUE=DATE:20260301" in lines  # a DATE where DATE-TIME is the default
    assert max(len(line) for line in lines) <= 75
    assert sum(line.startswith(b" ") for line in lines) > 20  # it was folded
    for line in lines:
        line.decode()  # no line ends inside a UTF-8 sequence
    todo = parse(response)[f"task-{task['id']}@{app.config['CALENDAR_UID_DOMAIN']}"]
    assert todo.description.value == description
    assert todo.summary.value == title
