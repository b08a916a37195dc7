"""The documentation pages work with no internet access: Swagger UI's assets come from
the swagger-ui-bundle package, ReDoc's from a copy vendored in ``web/static/redoc``
(see its README). ``/`` and ``/api/`` answer an index of the API's links, so a person
who opens the bare address finds the docs."""

from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Flask, request, url_for

from taskapp.web.api import api

SWAGGER_ASSETS_PATH = "/api/docs/assets"
REDOC_ASSETS_PATH = "/api/redoc/assets"
REDOC_FOLDER = Path(__file__).resolve().parent / "static" / "redoc"

index = Blueprint("index", __name__)


def register_docs_assets(app: Flask) -> None:
    for name, folder, path in (
        ("swagger_ui_assets", Path(swagger_ui_bundle.swagger_ui_path), SWAGGER_ASSETS_PATH),
        ("redoc_assets", REDOC_FOLDER, REDOC_ASSETS_PATH),
    ):
        app.register_blueprint(
            Blueprint(name, __name__, static_folder=str(folder), static_url_path=path)
        )
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", SWAGGER_ASSETS_PATH + "/")
    app.config.setdefault("OPENAPI_REDOC_URL", REDOC_ASSETS_PATH + "/redoc.standalone.js")
    app.register_blueprint(index)


@index.get("/")
@index.get("/api/")
def api_root():
    """Like DRF's API root: the collections and the docs, as absolute links."""
    spec = api.spec.to_dict()
    base = request.host_url.rstrip("/")
    links = {
        path.removeprefix("/api/").strip("/"): base + path
        for path in spec["paths"]
        if "{" not in path
    }
    return {
        "docs": url_for("api-docs.openapi_swagger_ui", _external=True),
        "redoc": url_for("api-docs.openapi_redoc", _external=True),
        "openapi": url_for("api-docs.openapi_json", _external=True),
        "health": url_for("health.healthz", _external=True),
        "endpoints": links,
    }
