"""Property-based fuzzing of the whole API from its own OpenAPI spec (schemathesis),
in-process, once as an ADMIN and once as an INTERN, with every schemathesis check.

Runs on SQLite (the PostgreSQL behaviour of the same code is covered by the rest of the
suite). More examples: FUZZ_EXAMPLES=500 ./scripts/test tests/test_fuzz.py
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from taskapp import create_app
from taskapp.models import Role

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck)
)
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _operations() -> list[tuple[str, str]]:
    spec = (
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
        .test_client()
        .get("/api/openapi.json")
        .get_json()
    )
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in methods
    ]


@pytest.fixture
def people(make_person, make_task):
    admin = make_person("admin", Role.ADMIN)
    intern = make_person("intern", Role.INTERN)
    for n in range(3):
        make_task(admin, title=f"admin task {n}", due_date="2026-01-01")
        make_task(intern, title=f"intern task {n}", priority="HIGH")
    return {Role.ADMIN: admin, Role.INTERN: intern}


def with_real_state(case, people, caller) -> None:
    """Fill in the inputs whose validity depends on stored state, which no schema can
    express: an assignee must be an existing active user, If-Match must be the current
    ETag and a cursor one the server signed (empty: the first page). Their failure
    answers (400, 412) have tests of their own."""
    known_ids = {person.id for person in people.values()}
    body = case.body if isinstance(case.body, dict) else {}
    if "assigned_to" in body and body["assigned_to"] not in known_ids:
        body["assigned_to"] = caller.id
    if case.query and "cursor" in case.query:
        case.query["cursor"] = ""
    if case.headers and "If-Match" in case.headers:
        case.headers["If-Match"] = "*"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.INTERN], ids=["as-admin", "as-intern"])
@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda value: value)
def test_operation_conforms_to_the_spec(app, people, role, method, path):
    operation = schemathesis.openapi.from_wsgi("/api/openapi.json", app)[path][method]
    caller = people[role]

    @given(case=operation.as_strategy())
    @FUZZ_SETTINGS
    def fuzz(case):
        with_real_state(case, people, caller)
        case.call_and_validate(headers=caller.headers)

    fuzz()
