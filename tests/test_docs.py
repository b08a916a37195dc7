"""OpenAPI spec and the documentation pages."""


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
