"""Serve Swagger UI's assets from the swagger-ui-bundle package, so the docs page works
in a browser with no internet access. ReDoc has no such package and loads from a CDN."""

from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Flask

SWAGGER_ASSETS_PATH = "/api/docs/assets"
REDOC_URL = "https://cdn.jsdelivr.net/npm/redoc@2.1.5/bundles/redoc.standalone.js"


def register_docs_assets(app: Flask) -> None:
    assets = Blueprint(
        "swagger_ui_assets",
        __name__,
        static_folder=str(Path(swagger_ui_bundle.swagger_ui_path)),
        static_url_path=SWAGGER_ASSETS_PATH,
    )
    app.register_blueprint(assets)
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", SWAGGER_ASSETS_PATH + "/")
    app.config.setdefault("OPENAPI_REDOC_URL", REDOC_URL)
