"""OpenAPI spec and the documentation pages."""

import re
import shutil
import subprocess

import jsonschema
import marshmallow as ma
import pytest
from helpers import IN_CI, ROOT, serve
from openapi_spec_validator import validate

from taskapp.web.schemas import AnswerConverter, BaseSchema


def test_openapi_spec_lists_every_endpoint_with_bearer_auth(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    paths = spec["paths"]
    for path in (
        "/api/auth/login/",
        "/api/auth/refresh/",
        "/api/auth/logout/",
        "/api/auth/me/",
        "/api/users/",
        "/api/users/{user_id}/",
        "/api/tasks/",
        "/api/tasks/{task_id}/",
        "/api/tasks/stats/",
        "/api/activity-logs/",
        "/api/activity-logs/{entry_id}/",
    ):
        assert path in paths, path
    assert paths["/api/tasks/"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/api/auth/login/"]["post"]
    assert "400" in paths["/api/tasks/"]["post"]["responses"]
    assert "401" in paths["/api/tasks/"]["post"]["responses"]
    assert "403" in paths["/api/users/"]["get"]["responses"]


def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in html
    assert "http" not in html.split("<script")[1].split(">")[0]
    asset = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    assert client.get("/api/docs/assets/swagger-ui.css").status_code == 200


def test_redoc_page(client):
    page = client.get("/api/redoc/")
    assert page.status_code == 200 and "redoc" in page.get_data(as_text=True).lower()


# --- The spec is truthful and usable ------------------------------------------------


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


def test_spec_passes_openapi_spec_validator(client):
    validate(_spec(client))


def test_every_parameter_default_and_example_is_a_value_the_api_accepts(api, client, admin):
    spec = _spec(client)
    checked = 0
    for path, method, operation in _operations(spec):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            for key in ("default", "example"):
                if key in schema:
                    jsonschema.validate(schema[key], schema)
                    checked += 1
                    if method == "get" and parameter["in"] == "query" and "{" not in path:
                        value = (
                            str(schema[key]).lower()
                            if schema[key] in (True, False)
                            else schema[key]
                        )
                        answer = api.as_(admin).get(path, query_string={parameter["name"]: value})
                        assert answer.status_code == 200, (
                            path,
                            parameter["name"],
                            answer.get_json(),
                        )
    for schema in spec["components"]["schemas"].values():
        for prop in schema.get("properties", {}).values():
            for key in ("default", "example"):
                if key in prop:
                    jsonschema.validate(prop[key], prop)
                    checked += 1
    assert checked > 30


def test_ordering_default_is_the_text_a_client_sends(api, client, admin, make_task):
    for n in range(3):
        make_task(admin, title=f"t{n}")
    for path in ("/api/tasks/", "/api/activity-logs/"):
        parameters = _spec(client)["paths"][path]["get"]["parameters"]
        ordering = next(p for p in parameters if p["name"] == "ordering")
        assert ordering["schema"]["default"] == "-created_at"
        implicit = api.as_(admin).get(path).get_json()["results"]
        explicit = api.as_(admin).get(path, query_string={"ordering": "-created_at"})
        assert [item["id"] for item in implicit] == [
            item["id"] for item in explicit.get_json()["results"]
        ]
        assert implicit[0]["id"] > implicit[-1]["id"]


def test_every_query_parameter_has_a_description(client):
    for path, method, operation in _operations(_spec(client)):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                assert parameter.get("description"), (method, path, parameter["name"])


def test_every_operation_has_a_unique_operation_id(client):
    ids = [operation.get("operationId") for _, _, operation in _operations(_spec(client))]
    assert all(ids) and len(ids) == len(set(ids)), ids
    assert "patch_task_by_id" in ids and "post_login" in ids


def test_answers_mark_every_field_they_always_carry_as_required(client):
    spec = _spec(client)
    answers = set()
    for _, _, operation in _operations(spec):
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if status.startswith("2") and schema:
                answers.add(schema["$ref"].rsplit("/", 1)[1])
    assert {"Task", "TaskPage", "User", "UserPage", "TaskStats", "ActivityLogPage"} <= answers
    for name in answers | {"ActivityLog"}:
        schema = spec["components"]["schemas"][name]
        sometimes = {"count"} if name.endswith("Page") else set()  # no count by cursor
        if name == "Refreshed":
            sometimes = {"refresh"}  # not with JWT_ROTATE_REFRESH_TOKENS=false
        assert set(schema.get("required", [])) == set(schema["properties"]) - sometimes, name
    assert "results" in spec["components"]["schemas"]["TaskPage"]["required"]


def test_schema_details_a_generated_client_relies_on(client):
    spec = _spec(client)
    schemas = spec["components"]["schemas"]
    assert "PaginationMetadata" not in schemas
    assert schemas["ActivityLog"]["properties"]["source"]["type"] == "string"
    assert "default" not in schemas["UserCreate"]["properties"]["email"]
    for path, method, operation in _operations(spec):
        responses = operation["responses"]
        if "401" in responses:
            assert "WWW-Authenticate" in responses["401"]["headers"], (method, path)
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"], (method, path)
    assert "429" in spec["paths"]["/api/auth/login/"]["post"]["responses"]


def test_schemas_carry_real_examples(client):
    schemas = _spec(client)["components"]["schemas"]
    for name in ("Task", "TaskWrite", "User", "UserCreate", "ActivityLog", "Login"):
        for field, prop in schemas[name]["properties"].items():
            assert "example" in prop, (name, field)
    assert schemas["TaskWrite"]["properties"]["title"]["example"] == "Write the quarterly report"


@pytest.mark.parametrize(
    ("template", "resource"), [("/api/tasks/{task_id}/", "task"), ("/api/users/{user_id}/", "user")]
)
def test_patch_without_a_body_is_documented_optional_and_changes_nothing(
    api, client, admin, make_task, template, resource
):
    """DRF answers a PATCH with no body as an empty partial update (200, unchanged); the
    spec says the body is optional, so the two agree."""
    assert _spec(client)["paths"][template]["patch"]["requestBody"]["required"] is False
    object_id = make_task(admin, title="Kept")["id"] if resource == "task" else admin.id
    url = re.sub(r"\{\w+\}", str(object_id), template)
    before = api.as_(admin).get(url).get_json()
    answer = api.as_(admin).patch(url)
    assert answer.status_code == 200
    after = answer.get_json()
    after.pop("updated_at", None), before.pop("updated_at", None)
    assert after == before


def test_redoc_is_served_without_a_cdn(client):
    html = client.get("/api/redoc/").get_data(as_text=True)
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert sources == ["/api/redoc/assets/redoc.standalone.js"]
    asset = client.get(sources[0])
    assert asset.status_code == 200 and len(asset.data) > 500_000


@pytest.mark.parametrize("path", ["/", "/api/"])
def test_the_bare_addresses_answer_an_index_of_links(client, path):
    answer = client.get(path)
    assert answer.status_code == 200
    index = answer.get_json()
    assert index["docs"] == "http://localhost/api/docs/"
    assert index["openapi"] == "http://localhost/api/openapi.json"
    assert index["endpoints"]["tasks"] == "http://localhost/api/tasks/"
    assert client.get(index["redoc"]).status_code == 200


def test_docs_pages_render_in_headless_chromium(app, tmp_path):
    """Both pages load their scripts from this server and draw the operations (a page
    whose script cannot load stays without them). CI installs chromium (.ci/run)."""
    browser = shutil.which("chromium")
    if browser is None:
        if IN_CI:
            pytest.fail("chromium is not installed (CI installs it)")
        pytest.skip("chromium is not installed")
    with serve(app) as base:
        for page in ("/api/docs/", "/api/redoc/"):
            command = [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                base + page,
            ]
            dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
            assert "Change some fields of a task" in dom, page
            assert "Exchange a username and password" in dom, page


def test_no_document_links_outside_the_repository():
    root = ROOT
    documents = [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]
    assert root / "docs" / "api.md" in documents
    for document in documents:
        text = document.read_text()
        for target in re.findall(r"\]\(([^)]+)\)", text):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            resolved = (document.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(root) and resolved.exists(), (document.name, target)
        assert "../shared" not in text and "CONTRACT.md" not in text, document.name
    assert "docs/api.md" in (root / "README.md").read_text()


def test_production_doc_agrees_with_the_proxy_policy():
    """policy.py applies ProxyFix when TRUSTED_PROXY_COUNT is set; the doc said it never did."""
    text = (ROOT / "docs" / "production.md").read_text()
    flat = " ".join(text.split())
    assert "does not apply `ProxyFix`" not in flat
    assert "no `ProxyFix`" not in flat
    assert "`TRUSTED_PROXY_COUNT` is set: then `ProxyFix`" in flat


def test_a_new_answer_schema_inherits_the_required_rule():
    """The rule lives in the spec machinery, not in each resource: any plain
    marshmallow answer schema gets every field it dumps marked required."""

    class Webhook(ma.Schema):
        id = ma.fields.Integer()
        url = ma.fields.String(allow_none=True)
        secret = ma.fields.String(load_only=True)
        note = ma.fields.String(metadata={"optional": True})

    class WebhookWrite(BaseSchema):
        url = ma.fields.String()

    converter = AnswerConverter("3.0.3", lambda schema: None, None)
    assert converter.schema2jsonschema(Webhook)["required"] == ["id", "url"]
    assert "required" not in converter.schema2jsonschema(WebhookWrite)
