"""Conditional GET: If-None-Match answers 304 while nothing the caller can see in that
detail or listing changed, and never after a change that could alter it."""

from datetime import date

import pytest

LISTINGS = ["/api/tasks/", "/api/tasks/?status=PENDING&ordering=due_date", "/api/tasks/?cursor="]


def get(client, person, url, etag=None):
    headers = dict(person.headers)
    if etag:
        headers["If-None-Match"] = etag
    return client.get(url, headers=headers)


def current_tag(client, person, url) -> str:
    response = get(client, person, url)
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"]
    return response.headers["ETag"]


def still_fresh(client, person, url, etag, sent=None) -> bool:
    """Whether ``If-None-Match: sent`` (default ``etag``) answers 304 with ``etag``."""
    response = get(client, person, url, sent or etag)
    assert response.status_code in (200, 304)
    if response.status_code == 304:
        assert response.data == b""
        assert response.headers["ETag"] == etag
        return True
    assert response.headers["ETag"] != etag
    return False


def test_detail_304_until_the_task_changes(api, client, intern, make_task):
    task = make_task(intern)
    url = api.task(task["id"])
    etag = current_tag(client, intern, url)
    assert still_fresh(client, intern, url, etag)
    assert still_fresh(client, intern, url, etag, sent=f'"other", W/{etag}')
    assert api.as_(intern).patch(url, json={"title": "new"}).status_code == 200
    assert not still_fresh(client, intern, url, etag)


def test_detail_of_a_task_not_visible_is_404_even_with_star(
    api, client, intern, other_intern, make_task
):
    task = make_task(other_intern)
    response = get(client, intern, api.task(task["id"]), "*")
    assert response.status_code == 404


@pytest.mark.parametrize("url", LISTINGS)
def test_list_304_while_unchanged(client, intern, make_task, url, count_queries):
    make_task(intern, title="mine")
    etag = current_tag(client, intern, url)
    with count_queries() as statements:
        assert still_fresh(client, intern, url, etag)
    page_reads = [s for s in statements if "FROM task " in s or "FROM task\n" in s]
    assert page_reads == [], "a 304 must not run the page or count query"


def test_list_tag_depends_on_the_query_and_the_caller(client, admin, intern, other_intern):
    tags = {
        current_tag(client, person, url)
        for person in (admin, intern, other_intern)
        for url in LISTINGS
    }
    assert len(tags) == 9
    assert not still_fresh(
        client, other_intern, "/api/tasks/", current_tag(client, intern, "/api/tasks/")
    )


@pytest.mark.parametrize("url", LISTINGS)
def test_no_stale_304_after_any_change(
    api, client, runner, admin, intern, other_intern, make_task, url
):
    """Each change that could alter the intern's listing moves its ETag; a change to
    someone else's task does not (the tag follows what the caller can see)."""
    mine = make_task(admin, assigned_to=intern.id, due_date="2026-01-10")
    theirs = make_task(admin, assigned_to=other_intern.id, due_date="2026-01-10")
    views = [(intern, url), (admin, url)]
    tags = {view: current_tag(client, *view) for view in views}

    def changed(change, *, intern_sees: bool):
        change()
        for person, view_url in views:
            sees = intern_sees if person is intern else True
            fresh = still_fresh(client, person, view_url, tags[(person, view_url)])
            assert fresh is not sees, (person.username, change.__name__)
            tags[(person, view_url)] = current_tag(client, person, view_url)

    def patch(task, body):
        def write():
            response = api.as_(admin).patch(api.task(task["id"]), json=body)
            assert response.status_code == 200

        write.__name__ = f"patch {body}"
        return write

    def other_user_write():
        patch(theirs, {"title": "not the intern's"})()

    def create_for_intern():
        make_task(admin, assigned_to=intern.id)

    def sweep():
        result = runner.invoke(
            args=["tasks", "mark-overdue", "--today", date(2026, 2, 1).isoformat()]
        )
        assert result.exit_code == 0, result.output

    def delete():
        response = api.as_(admin).delete(api.task(mine["id"]))
        assert response.status_code == 204

    changed(other_user_write, intern_sees=False)
    changed(patch(mine, {"title": "edited"}), intern_sees=True)
    changed(create_for_intern, intern_sees=True)
    changed(patch(mine, {"assigned_to": other_intern.id}), intern_sees=True)  # away
    changed(patch(mine, {"assigned_to": intern.id}), intern_sees=True)  # back to them
    changed(patch(theirs, {"assigned_to": intern.id}), intern_sees=True)  # to them
    changed(sweep, intern_sees=True)
    changed(delete, intern_sees=True)
