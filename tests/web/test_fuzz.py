"""Fuzzing the whole API from its own OpenAPI spec with schemathesis' engine (what its
command line runs), against the app served over real HTTP on a free port: every phase
(the spec's examples; coverage, which sends boundary and schema-violating values of
every parameter and body, missing bodies included; random fuzzing of valid and invalid
data; the stateful phase, which chains operations through the answers they give) and
every check, as an ADMIN and as an INTERN, on SQLite and PostgreSQL.

Examples per operation: FUZZ_EXAMPLES (default 5, to keep the suite fast). The full run
described in docs/api.md is ``FUZZ_EXAMPLES=200 ./scripts/test tests/web/test_fuzz.py``.
"""

import collections
import os

import pytest
import schemathesis
from helpers import serve
from schemathesis import GenerationMode
from schemathesis.engine import Status, events, from_schema

from taskapp.models import Role

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
PHASES = ["examples", "coverage", "fuzzing", "stateful"]


@pytest.fixture
def people(make_person, make_task):
    admin = make_person("admin", Role.ADMIN)
    intern = make_person("intern", Role.INTERN)
    for n in range(3):
        make_task(admin, title=f"admin task {n}", due_date="2026-01-01")
        make_task(intern, title=f"intern task {n}", priority="HIGH")
    return {Role.ADMIN: admin, Role.INTERN: intern}


def explained_by_the_docs(failure, response) -> bool:
    """The answers to schema-valid requests that depend on stored state, which no schema
    can express (docs/api.md, "Answers that depend on stored state"): a referenced user
    that does not exist or is not the caller's to assign (400 on ``assigned_to`` alone,
    or 403 for an INTERN), a personal access token's ``users:*`` scopes asked by an
    INTERN (403) or an expiry already past (400 on ``expires_at``), a webhook URL whose
    literal address the SSRF rules refuse (400 on ``url``), a recurrence that is not a
    supported RRULE or a recurring task without a due date (400 on ``recurrence`` or
    ``due_date``: a grammar and a rule no schema expresses), a reminder outside years
    1..9999 once in UTC or one the series' next occurrence could not carry (400 on
    ``remind_at``), a cursor the server did not sign (400 on ``cursor``) or a sync token
    it did not sign (400 on ``since``), a stale If-Match (412), an Idempotency-Key reused
    with
    another body (422), and a calendar feed URL that a later POST rotated away (404: one
    feed per user, asking again kills the previous URL)."""
    if failure.title == "Created resource not found":
        return "/api/auth/calendar-feed/" in str(response.request.url)
    if failure.title != "Schema-valid request rejected":
        return False
    if response.status_code in (412, 422):
        return True
    sent = str(response.request.body or "")
    if response.status_code == 403 and b"assigned_to" not in response.content:
        return "assigned_to" in sent or "users:" in sent
    body = response.json() if response.status_code == 400 else None
    state_dependent = {
        "assigned_to",
        "expires_at",
        "url",
        "recurrence",
        "due_date",
        "remind_at",
        "cursor",
        "since",  # a sync token the server did not sign
    }
    return isinstance(body, dict) and bool(body) and set(body) <= state_dependent


def configured_schema(base_url: str, caller, explained: collections.Counter):
    schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json")
    # The event stream never ends: an endless body is no answer to check (docs/live.md).
    schema = schema.exclude(method="GET", path="/api/events/")
    schema.config.update(headers=caller.headers)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
    )
    schema.config.phases.update(phases=PHASES)
    schema.config.checks.update(included_check_names=["all"])

    @schema.hook
    def filter_case(_context, case):
        """Leave out a PATCH of the caller's own account: changing one's own password
        ends one's own session (tests/users/test_users.py covers it), after which every
        request of the run would be an uninformative 401."""
        return not (case.method == "PATCH" and case.path_parameters == {"user_id": caller.id})

    @schema.hook
    def filter_failure(_context, failure, case, response):
        if explained_by_the_docs(failure, response):
            explained[f"{case.method} {case.path} -> {response.status_code}"] += 1
            return False
        return True

    return schema


def run(schema) -> tuple[dict, set]:
    """Run every phase; the failures by (phase, operation, check, title), one example
    each, and the phases that ran at least one scenario."""
    failures, ran = {}, set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.status != Status.SKIP and event.recorder.cases:
                ran.add(event.phase.value)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE:
                        title = check.failure_info.failure.title
                        key = (event.phase.value, event.label, check.name, title)
                        failures.setdefault(key, check.failure_info.code_sample)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures[("error", getattr(event, "label", None), "", str(event.value))] = ""
    return failures, ran


@pytest.mark.parametrize("role", [Role.ADMIN, Role.INTERN], ids=["as-admin", "as-intern"])
def test_api_conforms_to_its_spec_in_every_schemathesis_phase(app, people, role):
    explained = collections.Counter()
    with serve(app) as base_url:
        failures, ran = run(configured_schema(base_url, people[role], explained))
    print(f"answers explained by docs/api.md: {dict(explained)}")
    assert ran == set(PHASES)
    report = "\n".join(f"{key}\n    {sample}" for key, sample in failures.items())
    assert not failures, report
