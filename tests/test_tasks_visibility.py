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
def test_other_users_task_is_404_like_a_missing_one(client, intern, theirs, method, body):
    foreign = getattr(client, method)(
        f"/api/tasks/{theirs['id']}/", json=body, headers=intern.headers
    )
    missing = getattr(client, method)("/api/tasks/99999/", json=body, headers=intern.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_json() == missing.get_json() == NOT_FOUND


def test_others_task_is_unchanged_after_attempts(client, admin, intern, theirs):
    url = f"/api/tasks/{theirs['id']}/"
    client.patch(url, json={"status": "COMPLETED"}, headers=intern.headers)
    client.put(url, json={"title": "hijacked"}, headers=intern.headers)
    client.delete(url, headers=intern.headers)
    assert client.get(url, headers=admin.headers).get_json() == theirs


def test_list_shows_only_own_tasks(client, admin, intern, other_intern, theirs, make_task):
    own = make_task(intern, title="Mine")
    response = client.get("/api/tasks/", headers=intern.headers).get_json()
    assert [t["id"] for t in response["results"]] == [own["id"]]
    filtered = client.get(f"/api/tasks/?assigned_to={other_intern.id}", headers=intern.headers)
    assert filtered.get_json()["count"] == 0
    searched = client.get("/api/tasks/?search=Other", headers=intern.headers)
    assert searched.get_json()["count"] == 0


def test_stats_only_count_own_tasks(client, intern, theirs):
    assert client.get("/api/tasks/stats/", headers=intern.headers).get_json()["total"] == 0


def test_admin_sees_and_manages_everything(client, admin, theirs):
    url = f"/api/tasks/{theirs['id']}/"
    assert client.get(url, headers=admin.headers).status_code == 200
    assert client.patch(url, json={"title": "x"}, headers=admin.headers).status_code == 200
    assert client.delete(url, headers=admin.headers).status_code == 204
