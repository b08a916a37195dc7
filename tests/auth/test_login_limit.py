"""The login brute-force limit: test and count are one atomic step, whatever the
concurrency and whatever earlier requests carried; plus a per-address limit."""

import json
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest
from helpers import PASSWORD, create_user, login, only_postgresql
from werkzeug.serving import make_server

from taskapp.extensions import limiter

LOGIN = "/api/auth/login/"
DEEP_JSON = "[" * 1000 + "]" * 1000


@pytest.fixture
def serve():
    """Serve an app with werkzeug's threaded server on a free port; yields its base URL."""
    servers = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://localhost:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join()


def _post(url: str, body: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _burst(url: str, bodies: list[dict]) -> Counter:
    """Send every body at once (one thread each, released together)."""
    gate = threading.Barrier(len(bodies))
    statuses: list[int] = []

    def one(body):
        gate.wait()
        statuses.append(_post(url, body))

    threads = [threading.Thread(target=one, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(statuses)


# A password check costs a few milliseconds here: long enough for requests to overlap.
SLOW_HASH = {"PASSWORD_HASH_TIME_COST": 2, "PASSWORD_HASH_MEMORY_KIB": 4096}


@only_postgresql
@pytest.mark.parametrize("storage", ["memory", "redis"])
@pytest.mark.parametrize("burst", [16, 40])
def test_concurrent_wrong_passwords_get_at_most_five_checks(
    request, make_app, serve, storage, burst
):
    """Every request is a 401 (its password was checked) or a 429 (it was not)."""
    config = dict(SLOW_HASH, LOGIN_ADDRESS_RATE_LIMIT="1000 per minute")
    if storage == "redis":
        config["RATELIMIT_STORAGE_URI"] = request.getfixturevalue("redis_url")
    app = make_app(**config)
    create_user(app, "victim")
    base = serve(app)
    wrong = {"username": "victim", "password": "not the password"}
    statuses = _burst(base + LOGIN, [wrong] * burst)
    assert statuses == Counter({401: 5, 429: burst - 5}), statuses


def test_unreadable_body_never_disables_the_limit(make_app, redis_url):
    """With Redis storage, one unparsable login used to switch the limiter to its empty
    fallback for the process; now it is refused (400) before the limiter runs."""
    app = make_app(RATELIMIT_STORAGE_URI=redis_url)
    client = app.test_client()
    create_user(app, "target")
    refused = client.post(LOGIN, data=DEEP_JSON, content_type="application/json")
    assert refused.status_code == 400
    assert refused.get_json()["detail"].startswith("JSON parse error")
    wrong = {"username": "target", "password": "wrong"}
    statuses = [client.post(LOGIN, json=wrong).status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert not limiter._storage_dead


def test_refused_bodies_do_not_count(client, intern):
    """Bodies refused before the password check (unparsable, invalid) take no hit."""
    for _ in range(6):
        deep = client.post(LOGIN, data=DEEP_JSON, content_type="application/json")
        assert deep.status_code == 400
        assert client.post(LOGIN, json={"username": "intern"}).status_code == 400
    login(client, "intern")


def test_successes_give_their_hit_back(client, intern):
    """Only failures count: four failures, then any number of good logins, then one
    more failure is still answered (401), the next one is throttled."""
    wrong = {"username": "intern", "password": "wrong"}
    for _ in range(4):
        assert client.post(LOGIN, json=wrong).status_code == 401
    for _ in range(6):
        login(client, "intern")
    assert client.post(LOGIN, json=wrong).status_code == 401
    assert client.post(LOGIN, json=wrong).status_code == 429


def test_one_address_cannot_spray_usernames(make_app):
    app = make_app(LOGIN_ADDRESS_RATE_LIMIT="10 per minute")
    client = app.test_client()
    create_user(app, "real")
    statuses = [
        client.post(LOGIN, json={"username": f"user{i}", "password": "guess"}).status_code
        for i in range(12)
    ]
    assert statuses == [401] * 10 + [429] * 2
    other_address = client.post(
        LOGIN,
        json={"username": "real", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert other_address.status_code == 200


def test_logins_answered_503_during_a_database_outage_are_not_counted(make_app):
    """Only a wrong password counts toward the limit: logins the database could not
    check (503) keep answering 503, never 429."""
    app = make_app(
        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none",
        LOGIN_RATE_LIMIT="2 per minute",
        LOGIN_ADDRESS_RATE_LIMIT="2 per minute",
    )
    client = app.test_client()
    body = {"username": "someone", "password": "whatever"}
    statuses = [client.post(LOGIN, json=body).status_code for _ in range(4)]
    assert statuses == [503] * 4
