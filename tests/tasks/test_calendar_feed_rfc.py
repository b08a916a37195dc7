"""The calendar feed as RFC 5545 and calendar apps read it, checked with two parsers
(icalendar, which also builds it, and vobject, independent of it): reminders as
VALARMs, no rule on a completed occurrence, a UID that ignores the request's Host,
DTSTART/DUE ordering, and the all-day VEVENT form (``?as=events``)."""

from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest
import vobject

REMIND = "2026-01-04T08:30:00Z"


def feed_path(client, person) -> str:
    response = client.post("/api/auth/calendar-feed/", headers=person.headers)
    assert response.status_code == 200, response.get_json()
    return "/" + response.get_json()["url"].split("://", 1)[1].split("/", 1)[1]


def fetch(client, path: str, **kwargs):
    response = client.get(path, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/calendar"
    return response


def both_parsers(response, kind: str) -> tuple[dict, dict]:
    """The feed's components of ``kind`` (``VTODO``/``VEVENT``) by UID, once as
    icalendar reads them and once as vobject does."""
    text = response.get_data(as_text=True)
    by_icalendar = {
        str(component["UID"]): component
        for component in icalendar.Calendar.from_ical(text).walk(kind)
    }
    parsed = vobject.readOne(text)
    by_vobject = {
        component.uid.value: component for component in getattr(parsed, f"{kind.lower()}_list", [])
    }
    assert set(by_icalendar) == set(by_vobject)
    return by_icalendar, by_vobject


def uid_of(app, task_id: int) -> str:
    return f"task-{task_id}@{app.config['CALENDAR_UID_DOMAIN']}"


@pytest.mark.parametrize(("form", "kind"), [("", "VTODO"), ("?as=events", "VEVENT")])
def test_a_reminder_becomes_a_valarm_until_the_task_is_completed(
    app, client, intern, make_task, form, kind
):
    reminded = make_task(intern, title="Call the bank", due_date="2026-01-05", remind_at=REMIND)
    done = make_task(intern, title="Done already", due_date="2026-01-05", remind_at=REMIND)
    client.patch(f"/api/tasks/{done['id']}/", json={"status": "COMPLETED"}, headers=intern.headers)
    plain = make_task(intern, title="No reminder", due_date="2026-01-05")

    by_icalendar, by_vobject = both_parsers(fetch(client, feed_path(client, intern) + form), kind)

    alarm = by_icalendar[uid_of(app, reminded["id"])].subcomponents
    assert [component.name for component in alarm] == ["VALARM"]
    assert str(alarm[0]["ACTION"]) == "DISPLAY"
    assert str(alarm[0]["DESCRIPTION"]) == "Call the bank"
    assert alarm[0]["TRIGGER"].dt == datetime(2026, 1, 4, 8, 30, tzinfo=UTC)
    valarm = by_vobject[uid_of(app, reminded["id"])].valarm
    assert valarm.action.value == "DISPLAY"
    assert valarm.trigger.value == datetime(2026, 1, 4, 8, 30, tzinfo=UTC)
    for task in (done, plain):
        assert by_icalendar[uid_of(app, task["id"])].subcomponents == []
        assert not hasattr(by_vobject[uid_of(app, task["id"])], "valarm")


def _series_dates(by_vobject: dict, horizon: date) -> list[date]:
    """Every date the feed shows up to ``horizon``, as an app that expands RRULEs
    does: each component's own date, or the dates its rule gives."""
    shown = []
    for component in by_vobject.values():
        rules = component.getrruleset(addRDate=True)
        if rules is None:
            when = getattr(component, "due", None) or component.dtstart
            shown.append(when.value if isinstance(when.value, date) else when.value.date())
            continue
        for moment in rules:
            if moment.date() > horizon:
                break
            shown.append(moment.date())
    return sorted(
        day.date() if isinstance(day, datetime) else day for day in shown if day <= horizon
    )


@pytest.mark.parametrize(("form", "kind"), [("", "VTODO"), ("?as=events", "VEVENT")])
def test_a_completed_occurrence_no_longer_carries_the_rule(
    app, client, intern, make_task, form, kind
):
    first = make_task(
        intern, title="Weekly", due_date="2026-01-05", recurrence="FREQ=WEEKLY;COUNT=5"
    )
    for _ in range(2):  # complete the first two occurrences
        current = client.get(
            f"/api/tasks/?series={first['id']}&status=PENDING", headers=intern.headers
        ).get_json()["results"][0]
        answer = client.patch(
            f"/api/tasks/{current['id']}/", json={"status": "COMPLETED"}, headers=intern.headers
        )
        assert answer.status_code == 200

    by_icalendar, by_vobject = both_parsers(fetch(client, feed_path(client, intern) + form), kind)

    with_rule = [uid for uid, component in by_icalendar.items() if "RRULE" in component]
    assert len(by_icalendar) == 3 and len(with_rule) == 1
    weeks = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(5)]
    # Each of the five dates once: two completed occurrences, the open one and the two
    # its rule still gives.
    assert _series_dates(by_vobject, date(2026, 12, 31)) == weeks


def test_the_uid_does_not_depend_on_the_host_the_feed_was_fetched_by(
    app, client, intern, make_task
):
    task = make_task(intern, due_date="2026-01-05")
    path = feed_path(client, intern)
    bodies = [
        fetch(client, path, headers={"Host": host}).get_data()
        for host in ("localhost", "127.0.0.1", "localhost:8080")
    ]
    assert bodies[0] == bodies[1] == bodies[2]
    uids = set(both_parsers(fetch(client, path), "VTODO")[0])
    assert uids == {uid_of(app, task["id"])}


def test_the_uid_domain_is_a_setting(make_app, intern):
    app = make_app(CALENDAR_UID_DOMAIN="tasks.example.org")
    client = app.test_client()
    task = client.post(
        "/api/tasks/", json={"title": "x", "due_date": "2026-01-05"}, headers=intern.headers
    ).get_json()
    path = feed_path(client, intern)
    assert set(both_parsers(fetch(client, path), "VTODO")[1]) == {
        f"task-{task['id']}@tasks.example.org"
    }


def test_due_follows_dtstart_as_rfc_5545_wants(app, client, intern, make_task):
    """DUE is later than DTSTART and of the same value type, or there is no DTSTART;
    a component with a rule has a DTSTART (RFC 5545 3.8.2.3, 3.8.2.4), and the rule
    expands on the due dates the API's series has."""
    make_task(intern, title="One-off", due_date="2026-01-07")
    series = make_task(
        intern,
        title="Mondays",
        due_date="2026-01-05",
        recurrence="FREQ=WEEKLY;BYDAY=MO;UNTIL=20260119",
        remind_at=REMIND,
    )
    make_task(intern, title="Month ends", due_date="2026-01-31", recurrence="FREQ=MONTHLY")

    by_icalendar, by_vobject = both_parsers(fetch(client, feed_path(client, intern)), "VTODO")

    for uid, component in by_icalendar.items():
        if "DTSTART" in component:
            start, due = component["DTSTART"].dt, component["DUE"].dt
            assert type(start) is type(due), uid
            assert due > start, uid
        else:
            assert "RRULE" not in component, uid
    for uid, todo in by_vobject.items():
        if hasattr(todo, "dtstart"):
            assert type(todo.dtstart.value) is type(todo.due.value)
            assert todo.due.value > todo.dtstart.value, uid
            assert todo.due.value.date() == todo.dtstart.value.date(), "the due day is shown"
    mondays = by_vobject[uid_of(app, series["id"])]
    assert [moment.date() for moment in mondays.getrruleset(addRDate=True)] == [
        date(2026, 1, 5),
        date(2026, 1, 12),
        date(2026, 1, 19),
    ]
    month_ends = next(todo for todo in by_vobject.values() if todo.summary.value == "Month ends")
    assert [moment.date() for moment in month_ends.getrruleset(addRDate=True)][:3] == [
        date(2026, 1, 31),
        date(2026, 3, 31),
        date(2026, 5, 31),
    ]
    one_off = next(todo for todo in by_vobject.values() if todo.summary.value == "One-off")
    assert one_off.due.value == date(2026, 1, 7) and not hasattr(one_off, "dtstart")


def test_events_form_gives_all_day_events_on_the_due_dates(app, client, intern, make_task):
    task = make_task(intern, title="Renew passport", description="Photos!", due_date="2026-02-27")
    weekly = make_task(
        intern, title="Standup notes", due_date="2026-01-05", recurrence="FREQ=WEEKLY;COUNT=3"
    )
    make_task(intern, title="Undated")
    path = feed_path(client, intern)

    response = fetch(client, path + "?as=events")

    assert b"BEGIN:VTODO" not in response.data
    by_icalendar, by_vobject = both_parsers(response, "VEVENT")
    assert set(by_icalendar) == {uid_of(app, task["id"]), uid_of(app, weekly["id"])}
    event = by_icalendar[uid_of(app, task["id"])]
    assert event["DTSTART"].dt == date(2026, 2, 27)
    assert event["DTEND"].dt == date(2026, 2, 28)  # exclusive: the one day
    assert str(event["SUMMARY"]) == "Renew passport" and str(event["DESCRIPTION"]) == "Photos!"
    assert str(event["TRANSP"]) == "TRANSPARENT"
    repeating = by_vobject[uid_of(app, weekly["id"])]
    assert [moment.date() for moment in repeating.getrruleset(addRDate=True)] == [
        date(2026, 1, 5),
        date(2026, 1, 12),
        date(2026, 1, 19),
    ]
    # The same tasks, the same UIDs, as the VTODO form.
    assert set(both_parsers(fetch(client, path), "VTODO")[0]) == set(by_icalendar)


def test_each_form_has_its_own_etag_and_304(client, intern, make_task):
    make_task(intern, due_date="2026-01-05")
    path = feed_path(client, intern)
    todos = fetch(client, path).headers["ETag"]
    events = fetch(client, path + "?as=events").headers["ETag"]
    assert todos != events
    assert client.get(path, headers={"If-None-Match": todos}).status_code == 304
    assert client.get(path + "?as=events", headers={"If-None-Match": events}).status_code == 304
    assert client.get(path + "?as=events", headers={"If-None-Match": todos}).status_code == 200
    assert client.get(path + "?as=todos", headers={"If-None-Match": todos}).status_code == 304


def test_the_as_parameter_is_documented_and_checked(client, intern):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/auth/calendar-feed/{secret}.ics"]["get"]
    parameter = next(p for p in operation["parameters"] if p["name"] == "as")
    assert parameter["in"] == "query"
    assert parameter["schema"]["enum"] == ["todos", "events"]
    assert parameter["schema"]["default"] == "todos"
    assert "Google Calendar" in parameter["description"]
    path = feed_path(client, intern)
    refused = client.get(path + "?as=journal")
    assert refused.status_code == 400 and "as" in refused.get_json()
