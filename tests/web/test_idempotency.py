"""Idempotency-Key on POST /api/tasks/: replay, 422, 409, nothing stored on failure, a
lost answer retried over a real socket, and twenty concurrent POSTs on PostgreSQL."""

import http.client
import json
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from helpers import only_postgresql, wait_for
from werkzeug.serving import make_server

TASKS = "/api/tasks/"


def post(client, person, body, key=None):
    headers = {**person.headers, **({"Idempotency-Key": key} if key is not None else {})}
    return client.post(TASKS, json=body, headers=headers)


def counts(sql) -> tuple[int, int, int]:
    tasks = sql("SELECT count(*) FROM task")[0][0]
    created = sql("SELECT count(*) FROM activity_log WHERE action = 'CREATED'")[0][0]
    keys = sql("SELECT count(*) FROM idempotency_key")[0][0]
    return tasks, created, keys


def test_same_key_replays_the_first_answer_and_writes_nothing(client, intern, sql):
    first = post(client, intern, {"title": "Pay rent", "priority": "HIGH"}, key="k-1")
    assert first.status_code == 201
    again = post(client, intern, {"priority": "HIGH", "title": "Pay rent"}, key="k-1")
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert counts(sql) == (1, 1, 1)


def test_replay_is_the_first_answer_even_after_the_task_changed(api, client, intern):
    first = post(client, intern, {"title": "v1"}, key="k")
    url = first.headers["Location"]
    api.as_(intern).patch(url, json={"title": "v2"})
    assert post(client, intern, {"title": "v1"}, key="k").get_json()["title"] == "v1"


def test_same_key_with_another_body_is_422(client, intern, sql):
    assert post(client, intern, {"title": "one"}, key="k").status_code == 201
    response = post(client, intern, {"title": "two"}, key="k")
    assert response.status_code == 422
    assert "different request" in response.get_json()["detail"]
    assert counts(sql) == (1, 1, 1)


def test_without_the_header_every_post_creates(client, intern, sql):
    for _ in range(2):
        assert post(client, intern, {"title": "same"}).status_code == 201
    assert counts(sql) == (2, 2, 0)


@pytest.mark.parametrize(
    ("body", "status"),
    [({"title": ""}, 400), ({"bogus": 1}, 400), ({"title": "x", "assigned_to": 0}, 400)],
)
def test_a_failed_request_stores_nothing_and_the_key_stays_usable(
    client, intern, sql, body, status
):
    assert post(client, intern, body, key="retry-me").status_code == status
    assert counts(sql) == (0, 0, 0)
    assert post(client, intern, {"title": "fixed"}, key="retry-me").status_code == 201
    assert counts(sql) == (1, 1, 1)


def test_a_refused_request_stores_nothing(client, intern, other_intern, sql):
    refused = post(client, intern, {"title": "x", "assigned_to": other_intern.id}, key="k")
    assert refused.status_code == 403
    assert counts(sql) == (0, 0, 0)


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_key_length_is_checked(client, intern, sql, key):
    response = post(client, intern, {"title": "x"}, key=key)
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Idempotency-Key must be 1 to 255 characters."}
    assert counts(sql) == (0, 0, 0)


def test_keys_belong_to_their_user(client, intern, other_intern, sql):
    mine = post(client, intern, {"title": "x"}, key="shared")
    theirs = post(client, other_intern, {"title": "x"}, key="shared")
    assert mine.status_code == theirs.status_code == 201
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert counts(sql)[0] == 2


def test_a_personal_access_token_and_a_jwt_of_one_user_share_keys(api, client, intern, sql):
    token = (
        api.as_(intern)
        .post("/api/auth/tokens/", json={"name": "s", "scopes": ["tasks:write"]})
        .get_json()["token"]
    )
    first = post(client, intern, {"title": "x"}, key="k")
    replay = client.post(
        TASKS,
        json={"title": "x"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k"},
    )
    assert replay.status_code == 201 and replay.get_json() == first.get_json()
    assert counts(sql)[0] == 1


def _claim(sql, user_id, key, claimed_at, fingerprint="x" * 64):
    sql(
        "INSERT INTO idempotency_key (user_id, key, fingerprint, claim, claimed_at, created_at) "
        "VALUES (:u, :k, :f, 'someone-else', :t, :t)",
        u=user_id,
        k=key,
        f=fingerprint,
        t=claimed_at,
    )


def _fingerprint(body: dict) -> str:
    from taskapp.idempotency import fingerprint

    return fingerprint("POST", TASKS, json.dumps(body).encode())


def test_a_request_in_flight_answers_409(client, intern, sql):
    body = {"title": "slow"}
    _claim(sql, intern.id, "k", datetime.now(UTC), _fingerprint(body))
    response = post(client, intern, body, key="k")
    assert response.status_code == 409
    assert "still being processed" in response.get_json()["detail"]
    assert counts(sql) == (0, 0, 1)


def test_a_stale_claim_is_taken_over(client, intern, sql):
    """A process that died between its claim and its commit must not block the key."""
    body = {"title": "crashed"}
    _claim(sql, intern.id, "k", datetime.now(UTC) - timedelta(minutes=5), _fingerprint(body))
    first = post(client, intern, body, key="k")
    assert first.status_code == 201
    assert post(client, intern, body, key="k").get_json() == first.get_json()
    assert counts(sql) == (1, 1, 1)


def test_a_key_older_than_a_day_is_forgotten_and_purged(app, client, intern, sql):
    from taskapp import idempotency
    from taskapp.extensions import db
    from taskapp.models import utcnow

    first = post(client, intern, {"title": "x"}, key="old")
    sql(
        "UPDATE idempotency_key SET created_at = :t, claimed_at = :t",
        t=datetime.now(UTC) - timedelta(hours=25),
    )
    second = post(client, intern, {"title": "x"}, key="old")
    assert second.status_code == 201 and second.get_json()["id"] != first.get_json()["id"]
    assert counts(sql) == (2, 2, 1)
    sql("UPDATE idempotency_key SET created_at = :t", t=datetime.now(UTC) - timedelta(hours=25))
    post(client, intern, {"title": "y"}, key="fresh")
    with app.app_context():
        assert idempotency.purge(db.session, utcnow()) == 1
        db.session.commit()
    assert [row[0] for row in sql("SELECT key FROM idempotency_key")] == ["fresh"]


def test_the_purge_is_on_the_beat_schedule(app):
    schedule = app.extensions["celery"].conf.beat_schedule
    assert schedule["purge-idempotency-keys"]["task"] == "taskapp.purge_idempotency_keys"
    assert "taskapp.purge_idempotency_keys" in app.extensions["celery"].tasks


@pytest.fixture
def server(app):
    """The app on a real threaded HTTP server on a free port."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    thread.join(timeout=10)


def _raw_request(port: int, headers: dict, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {TASKS} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}", "", ""]
    return "\r\n".join(lines).encode() + payload


def test_answer_lost_after_commit_then_retry_gets_the_original(server, client, intern, sql):
    """The client sends the POST and hangs up once the task is committed, never reading
    the answer; its retry with the same key gets that task, and nothing more is written."""
    headers = {**intern.headers, "Idempotency-Key": "lost-answer"}
    body = {"title": "Only once"}
    with socket.create_connection(("127.0.0.1", server), timeout=10) as raw:
        raw.sendall(_raw_request(server, headers, body))
        assert wait_for(
            lambda: sql("SELECT count(*) FROM idempotency_key WHERE status_code = 201")[0][0] == 1
        )
        raw.shutdown(socket.SHUT_RDWR)
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    connection.request(
        "POST", TASKS, json.dumps(body), {**headers, "Content-Type": "application/json"}
    )
    retry = connection.getresponse()
    answer = json.loads(retry.read())
    assert retry.status == 201
    assert retry.getheader("Idempotent-Replayed") == "true"
    assert answer["title"] == "Only once"
    assert sql("SELECT id FROM task") == [(answer["id"],)]
    assert counts(sql) == (1, 1, 1)


@only_postgresql
def test_409_while_the_first_request_is_still_running(api, app, server, intern, make_task, sql):
    """Hold the row lock the first request's INSERT needs (its assignee's task counter),
    so that it is provably still running when the second request arrives."""
    make_task(intern, title="makes the counter row")
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    headers = {**intern.headers, "Idempotency-Key": "held", "Content-Type": "application/json"}
    body = json.dumps({"title": "held back"})
    results = {}

    def first_request():
        connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
        connection.request("POST", TASKS, body, headers)
        response = connection.getresponse()
        results["first"] = (response.status, json.loads(response.read()))

    with engine.connect() as blocker:
        blocker.execute(sa.text("SELECT * FROM task_counter FOR UPDATE"))
        thread = threading.Thread(target=first_request)
        thread.start()
        claimed = "SELECT count(*) FROM idempotency_key WHERE status_code IS NULL"
        assert wait_for(lambda: sql(claimed)[0][0] == 1)
        second = api.as_(headers).post(TASKS, data=body)
        assert second.status_code == 409
        blocker.rollback()
    thread.join(timeout=30)
    engine.dispose()
    status, created = results["first"]
    assert status == 201
    third = api.as_(headers).post(TASKS, data=body)
    assert third.status_code == 201 and third.get_json() == created
    assert sql("SELECT count(*) FROM task WHERE title = 'held back'")[0][0] == 1


@only_postgresql
def test_twenty_concurrent_posts_with_one_key_create_one_task(server, intern, sql):
    headers = {**intern.headers, "Idempotency-Key": "burst", "Content-Type": "application/json"}
    body = json.dumps({"title": "exactly one"})
    barrier = threading.Barrier(20)
    results = [None] * 20

    def worker(n):
        connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
        barrier.wait()
        connection.request("POST", TASKS, body, headers)
        response = connection.getresponse()
        results[n] = (response.status, json.loads(response.read()))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(status for status, _ in results)
    assert set(statuses) <= {201, 409}, statuses
    created = {answer["id"] for status, answer in results if status == 201}
    assert len(created) == 1
    assert sql("SELECT count(*) FROM task")[0][0] == 1
    assert sql("SELECT count(*) FROM activity_log WHERE action = 'CREATED'")[0][0] == 1


def test_browsers_may_send_the_key_and_read_the_replay_marker(make_app):
    client = make_app(CORS_ORIGINS="https://app.example.com").test_client()
    preflight = client.options(
        TASKS,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "idempotency-key" in allowed
    answer = client.get(TASKS, headers={"Origin": "https://app.example.com"})
    assert "idempotent-replayed" in answer.headers["Access-Control-Expose-Headers"].lower()
