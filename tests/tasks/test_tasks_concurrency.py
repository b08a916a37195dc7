"""Optional optimistic concurrency with ETag / If-Match."""

import pytest
from helpers import Api, only_postgresql


@pytest.fixture
def task(make_task, intern):
    return make_task(intern, title="Shared")


def _etag(client, person, task):
    return Api(client).as_(person).get(Api.task(task["id"])).headers["ETag"]


@pytest.mark.parametrize("method", ["patch", "put"])
def test_stale_if_match_is_412_and_changes_nothing(api, client, intern, task, method):
    url = api.task(task["id"])
    stale = _etag(client, intern, task)
    assert api.as_(intern).patch(url, json={"title": "First"}).status_code == 200
    before = api.as_(intern).get(url).get_json()
    response = getattr(client, method)(
        url, json={"title": "Second"}, headers={**intern.headers, "If-Match": stale}
    )
    assert response.status_code == 412
    assert set(response.get_json()) == {"detail"}
    assert api.as_(intern).get(url).get_json() == before


def test_fresh_if_match_succeeds(api, client, intern, task):
    url = api.task(task["id"])
    fresh = _etag(client, intern, task)
    response = api.as_(intern).patch(url, json={"title": "Ok"}, headers={"If-Match": fresh})
    assert response.status_code == 200
    assert response.headers["ETag"] != fresh


def test_stale_if_match_on_delete(api, client, intern, task):
    url = api.task(task["id"])
    stale = _etag(client, intern, task)
    api.as_(intern).patch(url, json={"priority": "HIGH"})
    response = api.as_(intern).delete(url, headers={"If-Match": stale})
    assert response.status_code == 412
    assert api.as_(intern).get(url).status_code == 200
    fresh = _etag(client, intern, task)
    assert api.as_(intern).delete(url, headers={"If-Match": fresh}).status_code == 204


def test_no_op_patch_keeps_etag(api, client, intern, task):
    url = api.task(task["id"])
    etag = _etag(client, intern, task)
    response = api.as_(intern).patch(url, json={"title": "Shared"}, headers={"If-Match": etag})
    assert response.status_code == 200 and response.headers["ETag"] == etag


def test_star_and_list_forms_of_if_match(api, client, intern, task):
    url = api.task(task["id"])
    etag = _etag(client, intern, task)
    star = api.as_(intern).patch(url, json={"title": "a"}, headers={"If-Match": "*"})
    assert star.status_code == 200
    new = star.headers["ETag"]
    listed = api.as_(intern).patch(url, json={"title": "b"}, headers={"If-Match": f"{etag}, {new}"})
    assert listed.status_code == 200


def test_without_if_match_writes_go_through(api, intern, task):
    url = api.task(task["id"])
    for title in ("one", "two", "three"):
        assert api.as_(intern).patch(url, json={"title": title}).status_code == 200


def _in_parallel(app, count: int, call):
    """Run ``call(client, n)`` from ``count`` threads released at the same moment."""
    import threading

    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(n):
        client = app.test_client()
        barrier.wait()
        results[n] = call(client, n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@only_postgresql
def test_twenty_concurrent_patches_with_one_etag_one_wins(api, app, client, intern, task, sql):
    url = api.task(task["id"])
    etag = _etag(client, intern, task)
    headers = {**intern.headers, "If-Match": etag}
    statuses = _in_parallel(
        app,
        20,
        lambda c, n: c.patch(url, json={"title": f"writer {n}"}, headers=headers).status_code,
    )
    assert sorted(statuses) == [200] + [412] * 19
    [(updates,)] = sql("SELECT count(*) FROM activity_log WHERE action = 'UPDATED'")
    assert updates == 1


@only_postgresql
def test_concurrent_creates_lose_nothing(app, intern, sql):
    def create_five(c, n):
        return [
            c.post("/api/tasks/", json={"title": f"c{n}-{i}"}, headers=intern.headers).status_code
            for i in range(5)
        ]

    statuses = _in_parallel(app, 20, create_five)
    assert [s for batch in statuses for s in batch] == [201] * 100
    [(tasks,)] = sql("SELECT count(DISTINCT title) FROM task")
    [(entries,)] = sql("SELECT count(*) FROM activity_log WHERE action = 'CREATED'")
    assert tasks == entries == 100
