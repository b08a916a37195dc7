"""Cursor pagination: DRF's CursorPagination shape, full keyset order, signed cursors,
and stable walks while other clients insert, delete and reassign."""

import itertools
from urllib.parse import parse_qs, urlsplit

import pytest

ORDERINGS = [
    "-created_at",
    "due_date",
    "-due_date",
    "-priority,due_date",
    "title",
    "status,-id",
    "status",
    "-status",
    "id",
]
DUE_DATES = ["2026-03-01", None, "2026-01-15", "2026-03-01", None, "2026-02-10", "2026-01-15"]


def follow(client, person, url):
    response = client.get(url, headers=person.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def walk(client, person, url, between=lambda page: None) -> list[int]:
    """Every id seen following ``next`` from ``url``; ``between`` runs after each page."""
    seen, page_number = [], 0
    while url:
        body = follow(client, person, url)
        assert set(body) == {"next", "previous", "results"}
        seen += [task["id"] for task in body["results"]]
        between(page_number)
        page_number += 1
        url = body["next"]
    return seen


def offset_listing(client, person, query: str) -> list[int]:
    ids, page = [], 1
    while True:
        body = follow(client, person, f"/api/tasks/?{query}&page={page}&page_size=100")
        ids += [task["id"] for task in body["results"]]
        if not body["next"]:
            return ids
        page += 1


@pytest.fixture
def spread(admin, intern, make_task):
    """17 tasks with repeated titles, priorities and due dates (nulls included)."""
    priorities = itertools.cycle(["LOW", "HIGH", "MEDIUM"])
    statuses = itertools.cycle(["PENDING", "IN_PROGRESS", "COMPLETED"])
    return [
        make_task(
            admin,
            title=f"task {n % 4}",
            assigned_to=intern.id if n % 2 else admin.id,
            priority=next(priorities),
            status=next(statuses),
            due_date=DUE_DATES[n % len(DUE_DATES)],
        )["id"]
        for n in range(17)
    ]


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_cursor_walk_matches_the_offset_order(client, admin, spread, ordering):
    query = f"ordering={ordering}"
    expected = offset_listing(client, admin, query)
    assert len(expected) == 17
    forward = walk(client, admin, f"/api/tasks/?{query}&cursor=&page_size=4")
    assert forward == expected


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_previous_links_walk_back_through_the_same_pages(client, admin, spread, ordering):
    url = f"/api/tasks/?ordering={ordering}&cursor=&page_size=5"
    pages = []
    while url:
        body = follow(client, admin, url)
        pages.append([task["id"] for task in body["results"]])
        last, url = body, body["next"]
    backwards = []
    url = last["previous"]
    while url:
        body = follow(client, admin, url)
        backwards.append([task["id"] for task in body["results"]])
        url = body["previous"]
    assert backwards == pages[:-1][::-1]
    assert follow(client, admin, last["previous"])["next"] is not None


def test_envelope_links_are_absolute_and_keep_the_filters(client, admin, spread):
    body = follow(client, admin, "/api/tasks/?status=PENDING&cursor=&page_size=2")
    assert body["previous"] is None
    assert "count" not in body
    link = urlsplit(body["next"])
    assert link.scheme == "http" and link.netloc
    params = parse_qs(link.query)
    assert params["status"] == ["PENDING"] and params["page_size"] == ["2"]
    assert params["cursor"][0]
    second = follow(client, admin, body["next"])
    assert second["previous"] and all(t["status"] == "PENDING" for t in second["results"])


def test_page_size_is_capped_and_empty_listing_has_no_links(client, admin, intern):
    body = follow(client, intern, "/api/tasks/?cursor=&page_size=1000")
    assert body == {"next": None, "previous": None, "results": []}


def test_activity_log_cursor(client, admin, spread):
    """Default order (newest first, ties by id) and ordering=id, as the offset listing."""
    for ordering in ["-created_at", "id"]:
        offset = follow(client, admin, f"/api/activity-logs/?ordering={ordering}&page_size=100")
        expected = [entry["id"] for entry in offset["results"]]
        url = f"/api/activity-logs/?ordering={ordering}&cursor=&page_size=3"
        assert walk(client, admin, url) == expected
        assert len(expected) == 17


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
        lambda c: "x" + c,
        lambda c: "not-a-cursor",
    ],
)
def test_forged_cursor_is_400(api, client, admin, spread, tamper):
    body = follow(client, admin, "/api/tasks/?cursor=&page_size=2")
    cursor = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    response = api.as_(admin).get(f"/api/tasks/?cursor={tamper(cursor)}")
    assert response.status_code == 400
    assert response.get_json() == {"cursor": ["Invalid cursor"]}


def test_cursor_signed_with_another_secret_is_400(api, admin, spread, make_app):
    other = make_app(JWT_SECRET_KEY="another-secret-key-that-is-long-enough-for-hs256")
    with other.test_request_context("/api/tasks/"):
        from itsdangerous import URLSafeSerializer

        forged = URLSafeSerializer(other.config["JWT_SECRET_KEY"], salt="taskapp.cursor").dumps(
            {"o": "-created_at,-id", "p": ["2026-01-01T00:00:00+00:00", 1]}
        )
    response = api.as_(admin).get(f"/api/tasks/?cursor={forged}")
    assert response.status_code == 400


def test_cursor_of_another_ordering_is_400(api, client, admin, spread):
    body = follow(client, admin, "/api/tasks/?ordering=title&cursor=&page_size=2")
    cursor = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    response = api.as_(admin).get(f"/api/tasks/?ordering=-title&cursor={cursor}")
    assert response.status_code == 400
    assert response.get_json() == {"cursor": ["Invalid cursor"]}


def test_a_field_named_twice_orders_at_its_first_mention(client, admin, spread):
    twice = walk(client, admin, "/api/tasks/?ordering=title,-title&cursor=&page_size=4")
    assert twice == offset_listing(client, admin, "ordering=title")


def test_walk_while_another_client_inserts_deletes_and_reassigns(
    api, client, admin, intern, other_intern, make_task, spread
):
    """Rows that exist (and stay the intern's) throughout the walk show exactly once, in
    every ordering whose keys the concurrent writes do not change."""
    for ordering in ["-created_at", "due_date", "-priority,due_date", "title"]:
        mine = offset_listing(client, intern, f"ordering={ordering}")
        doomed = set(mine[1::4])  # deleted during the walk
        moved = set(mine[2::4]) - doomed  # reassigned away and back, or away for good
        stable = set(mine) - doomed - moved

        to_delete, to_move = list(doomed), list(moved)

        def write(_page_number, to_delete=to_delete, to_move=to_move):
            make_task(admin, title="task 0", assigned_to=intern.id, due_date=None)
            make_task(admin, title="task 2", assigned_to=intern.id, due_date="2026-01-15")
            if to_delete:
                response = api.as_(admin).delete(api.task(to_delete.pop()))
                assert response.status_code == 204
            if to_move:
                away = {"assigned_to": other_intern.id}
                url = api.task(to_move.pop())
                assert api.as_(admin).patch(url, json=away).status_code == 200

        seen = walk(client, intern, f"/api/tasks/?ordering={ordering}&cursor=&page_size=3", write)
        assert len(seen) == len(set(seen)), ordering
        assert stable <= set(seen), ordering
