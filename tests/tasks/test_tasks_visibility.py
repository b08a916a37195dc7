"""Object-level authorization: an INTERN sees and touches only their own tasks, and
another user's task answers exactly like a missing one."""

import pytest

NOT_FOUND = {"detail": "No Task matches the given query."}


@pytest.fixture
def theirs(admin, other_intern, make_task):
    return make_task(admin, title="Other's task", assigned_to=other_intern.id)


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("patch", {"title": "mine now"}),
        ("put", {"title": "mine now"}),
        ("delete", None),
    ],
)
def test_other_users_task_is_404_like_a_missing_one(api, client, intern, theirs, method, body):
    foreign = getattr(client, method)(api.task(theirs["id"]), json=body, headers=intern.headers)
    missing = getattr(client, method)("/api/tasks/99999/", json=body, headers=intern.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_json() == missing.get_json() == NOT_FOUND


def test_others_task_is_unchanged_after_attempts(api, admin, intern, theirs):
    url = api.task(theirs["id"])
    api.as_(intern).patch(url, json={"status": "COMPLETED"})
    api.as_(intern).put(url, json={"title": "hijacked"})
    api.as_(intern).delete(url)
    assert api.as_(admin).get(url).get_json() == theirs


def test_list_shows_only_own_tasks(api, admin, intern, other_intern, theirs, make_task):
    own = make_task(intern, title="Mine")
    response = api.as_(intern).get("/api/tasks/").get_json()
    assert [t["id"] for t in response["results"]] == [own["id"]]
    filtered = api.as_(intern).get(f"/api/tasks/?assigned_to={other_intern.id}")
    assert filtered.get_json()["count"] == 0
    searched = api.as_(intern).get("/api/tasks/?search=Other")
    assert searched.get_json()["count"] == 0


def test_stats_only_count_own_tasks(api, intern, theirs):
    assert api.as_(intern).get("/api/tasks/stats/").get_json()["total"] == 0


def test_admin_sees_and_manages_everything(api, admin, theirs):
    url = api.task(theirs["id"])
    assert api.as_(admin).get(url).status_code == 200
    assert api.as_(admin).patch(url, json={"title": "x"}).status_code == 200
    assert api.as_(admin).delete(url).status_code == 204
