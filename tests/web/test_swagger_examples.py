"""Swagger UI's "Try it out" works as shipped: what it pre-fills (each parameter's
example or default, each request body's example) is what a client sends on Execute,
against the demo data (`flask demo seed`, as ./scripts/run starts the app)."""

import re

import pytest

PLACEHOLDER = object()
"""What Swagger UI invents for a property with no example, default or enum ("string",
0, a random text matching a pattern...): never a value the API is meant to get."""
PLACEHOLDER_CREDENTIALS = {"post_refresh", "post_logout"}
"""Bodies whose example is a sample token: no example can be a live one, so their
documented 401 is the right answer."""


def _spec(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def _resolve(spec, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def prefilled_query(operation: dict) -> dict:
    """The query string Swagger UI sends when Execute is pressed untouched: every query
    parameter that has an example or a default, with it."""
    query = {}
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        for value in (parameter.get("example"), schema.get("example"), schema.get("default")):
            if parameter["in"] == "query" and value is not None:
                query[parameter["name"]] = str(value).lower() if isinstance(value, bool) else value
                break
    return query


def sample(spec, schema: dict):
    """The value Swagger UI shows for ``schema``: its example, else its default, else
    its first enum value, else, for an object, the sample of each writable property;
    :data:`PLACEHOLDER` where it would have to invent one."""
    schema = _resolve(spec, schema)
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    if "properties" in schema:
        return {
            name: sample(spec, prop)
            for name, prop in schema["properties"].items()
            if not _resolve(spec, prop).get("readOnly")
        }
    if schema.get("type") == "array":
        return [sample(spec, schema.get("items", {}))]
    if schema.get("type") == "boolean":
        return True  # Swagger UI's sample, a real value
    return PLACEHOLDER


def body_example(spec, operation: dict) -> dict:
    """The JSON body Swagger UI pre-fills: the media type's example, else the sample of
    its schema."""
    media = operation["requestBody"]["content"]["application/json"]
    if "example" in media:
        return media["example"]
    return sample(spec, media["schema"])


def _placeholders(value, where: str) -> list[str]:
    if value is PLACEHOLDER:
        return [where]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _placeholders(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [p for item in value for p in _placeholders(item, f"{where}[]")]
    return []


DEMO = {"username": "admin", "password": "taskapp-demo"}
"""The demo ADMIN of ``flask demo seed``, as ./scripts/run prints it."""


@pytest.fixture
def demo(app, runner, client):
    """The demo data, and the demo ADMIN's bearer header."""
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    answer = client.post("/api/auth/login/", json=DEMO)
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access']}"}


def test_the_login_example_logs_in_the_demo_user(client, demo):
    spec = _spec(client)
    example = body_example(spec, spec["paths"]["/api/auth/login/"]["post"])
    assert example == DEMO
    answer = client.post("/api/auth/login/", json=example)
    assert answer.status_code == 200, answer.get_json()
    me = client.get(
        "/api/auth/me/", headers={"Authorization": f"Bearer {answer.get_json()['access']}"}
    )
    assert me.get_json()["username"] == "admin"


def test_every_request_body_example_is_complete(client):
    spec = _spec(client)
    missing = []
    for path, method, operation in _operations(spec):
        if "requestBody" in operation:
            missing += _placeholders(body_example(spec, operation), f"{method} {path}")
    assert missing == []


def test_prefilled_query_parameters_do_not_narrow_a_listing(client, demo):
    """Execute with what Swagger UI pre-filled answers what the bare request answers:
    the task list's date filters were pre-filled with an example date (count: 0)."""
    spec = _spec(client)
    compared = []
    for path, method, operation in _operations(spec):
        if method != "get" or "{" in path:
            continue
        bare = client.get(path, headers=demo)
        if bare.status_code != 200 or "results" not in (bare.get_json() or {}):
            continue
        filled = client.get(path, query_string=prefilled_query(operation), headers=demo)
        assert filled.status_code == 200, (path, filled.get_json())
        ids = [
            [item.get("id") for item in answer.get_json()["results"]] for answer in (bare, filled)
        ]
        assert ids[0] == ids[1], (path, prefilled_query(operation))
        compared.append(path)
    assert "/api/tasks/" in compared and "/api/users/" in compared
    assert client.get("/api/tasks/", headers=demo).get_json()["count"] > 0


def test_every_request_body_example_is_answered_with_success(client, demo):
    """Execute on every operation with a body, with exactly what Swagger UI pre-filled
    (path ids typed in by the user, as there are no examples for them): 2xx, except a
    sample refresh token, which is the documented 401."""
    spec = _spec(client)
    intern = next(
        user
        for user in client.get("/api/users/", headers=demo).get_json()["results"]
        if user["username"] == "intern"
    )
    ids = {"user_id": intern["id"]}
    creations = {"/api/tasks/": "task_id", "/api/webhooks/": "webhook_id"}
    operations = sorted(
        ((path, method, operation) for path, method, operation in _operations(spec)),
        key=lambda item: ("{" in item[0], item[1] != "post"),
    )
    answered = {}
    for path, method, operation in operations:
        if "requestBody" not in operation:
            continue
        names = re.findall(r"\{(\w+)\}", path)
        assert all(name in ids for name in names), f"no id to type in for {method} {path}"
        url = re.sub(r"\{(\w+)\}", lambda match: str(ids[match.group(1)]), path)
        answer = client.open(
            url,
            method=method.upper(),
            json=body_example(spec, operation),
            query_string=prefilled_query(operation),
            headers=demo,
        )
        documented = set(operation["responses"])
        assert str(answer.status_code) in documented, (method, path, answer.status_code)
        if operation["operationId"] in PLACEHOLDER_CREDENTIALS:
            assert answer.status_code == 401, (method, path, answer.get_json())
        else:
            assert 200 <= answer.status_code < 300, (method, path, answer.get_json())
        if path in creations and method == "post":
            ids[creations[path]] = answer.get_json()["id"]
        answered[f"{method} {path}"] = answer.status_code
    for operation in (
        "post /api/webhooks/",
        "post /api/auth/tokens/",
        "patch /api/users/{user_id}/",
    ):
        assert operation in answered, answered
