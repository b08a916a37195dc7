"""Shared fixtures. Every test that uses ``app`` runs once per database backend:
SQLite always, PostgreSQL when reachable (required when ``CI`` is set). The schema comes
from the Alembic migrations (``flask db upgrade``), never from ``create_all``."""

import contextlib
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy as sa
from flask_migrate import upgrade
from helpers import IN_CI, JWT_SECRET, PG_ADMIN_URL, ROOT, Api, Person, create_user, wait_for

from taskapp import create_app
from taskapp.extensions import db, limiter
from taskapp.features import import_models
from taskapp.models import Role

PG_TEST_DB = os.environ.get("TEST_PG_DATABASE", "taskapp_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = [b for b in os.environ.get("TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
TABLES = tuple(table.name for table in import_models().sorted_tables)
"""Every table, emptied between PostgreSQL tests (new models join automatically)."""

BASE_CONFIG = {
    "TESTING": True,
    "JWT_SECRET_KEY": JWT_SECRET,
    "PASSWORD_HASH_TIME_COST": 1,
    "PASSWORD_HASH_MEMORY_KIB": 8,
    "PASSWORD_HASH_PARALLELISM": 1,
    "RATELIMIT_STORAGE_URI": "memory://",
    "CELERY": {"broker_url": "memory://", "task_ignore_result": True},
}


def unavailable(what: str, error: Exception):
    """Skip on a developer machine; fail in CI, where every real service must run."""
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message + " (CI requires it)", pytrace=False)
    pytest.skip(message)


def _upgraded(url: str) -> None:
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("schema") / "template.sqlite"
    _upgraded(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_TEST_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_TEST_DB}"')
    except psycopg.OperationalError as error:
        unavailable("PostgreSQL", error)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{PG_TEST_DB}"
    _upgraded(url)
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(request, backend, tmp_path) -> str:
    if backend == "sqlite":
        path = tmp_path / "taskapp.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # The log refuses TRUNCATE (migration 0003); the owner lifts that for this
        # transaction only, between tests.
        conn.execute(sa.text("ALTER TABLE activity_log DISABLE TRIGGER activity_log_no_truncate"))
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        conn.execute(sa.text("ALTER TABLE activity_log ENABLE TRIGGER activity_log_no_truncate"))
    engine.dispose()
    return url


@pytest.fixture
def make_app(database_url):
    apps = []

    def factory(**overrides):
        config = {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, **overrides}
        app = create_app(config)
        with app.app_context(), contextlib.suppress(redis.ConnectionError):
            limiter.reset()  # the limiter is process-global: no counts from other tests
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client) -> Api:
    """``api.as_(person).patch(api.task(7), json=...)``: see :class:`helpers.Api`."""
    return Api(client)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        unavailable("Redis", error)
    return REDIS_URL


@pytest.fixture
def make_person(app, client):
    def factory(username: str, role: Role = Role.INTERN) -> Person:
        return Person(client, create_user(app, username, role), username, role)

    return factory


@pytest.fixture
def admin(make_person) -> Person:
    return make_person("admin", Role.ADMIN)


@pytest.fixture
def intern(make_person) -> Person:
    return make_person("intern", Role.INTERN)


@pytest.fixture
def other_intern(make_person) -> Person:
    return make_person("other", Role.INTERN)


@pytest.fixture
def sql(app):
    """Run SQL against the test database outside any request."""

    def run(statement: str, **params):
        with app.app_context():
            result = db.session.execute(sa.text(statement), params)
            rows = result.all() if result.returns_rows else result.rowcount
            db.session.commit()
            return rows

    return run


@pytest.fixture
def count_queries(app):
    @contextmanager
    def counting():
        statements: list[str] = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        with app.app_context():
            engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)

    return counting


@pytest.fixture
def make_task(client):
    """Create a task through the API as ``person``; returns the answer's body."""

    def create(person: Person, title: str = "A task", **fields) -> dict:
        response = client.post(
            "/api/tasks/", json={"title": title, **fields}, headers=person.headers
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create


@pytest.fixture
def backdate(app):
    """Set a task's created_at (test setup only: a bulk UPDATE writes no audit entry)."""
    from taskapp.tasks.models import Task

    def run(task_id: int, created_at) -> None:
        with app.app_context():
            statement = sa.update(Task).where(Task.id == task_id).values(created_at=created_at)
            db.session.execute(statement)
            db.session.commit()

    return run


@pytest.fixture
def redis_broker(redis_url) -> str:
    """The real Redis as the Celery broker, emptied first."""
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


WORKER_SECRET = "worker-test-secret-key-long-enough-32b"


@pytest.fixture
def start_worker(database_url, tmp_path):
    """Start ``celery -A wsgi.celery worker`` as a real process over ``broker``
    (``beat=True``: with the beat schedule inside, as the embedded mode runs it);
    ``settings`` go into its environment. The process has its log at ``.log``; every
    worker started is stopped after the test."""
    processes = []

    def start(broker: str, *, beat: bool = False, **settings: str) -> subprocess.Popen:
        log = tmp_path / f"worker-{len(processes)}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker,
            "JWT_SECRET_KEY": WORKER_SECRET,
            "TASKAPP_INSTANCE_DIR": str(tmp_path),
            **settings,
        }
        command = [sys.executable, "-m", "celery", "-A", "wsgi.celery", "worker"]
        command += ["--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
        command += [f"--hostname=w{len(processes)}@%h"] + (["--beat"] if beat else [])
        with log.open("w") as out:
            process = subprocess.Popen(  # its own group: beat runs in a child process
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log = log
        processes.append(process)
        assert wait_for(lambda: "ready." in log.read_text(), timeout=60), log.read_text()
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
