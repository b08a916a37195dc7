"""taskapp: a task-management REST API (Flask re-creation of a Django/DRF system).

:func:`create_app` builds the app in small named steps, walking the one list of
feature packages (:mod:`taskapp.features`): each adds its blueprint, CLI groups,
periodic tasks and Session listeners. Blueprints, the CLI and Celery are imported
inside those steps, so importing a domain module (``taskapp.models``,
``taskapp.audit``...) loads none of them.
"""

from pathlib import Path

from flask import Flask

from taskapp.config import check_production, load_config


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, with ``config`` overriding it (tests)."""
    app = Flask(__name__, static_folder=None)
    app.config.update(load_config())
    app.config.update(config or {})
    check_production(app.config)
    register_logging(app)
    app.url_map.strict_slashes = False
    app.json.sort_keys = False
    register_extensions(app)
    install_listeners()
    register_blueprints(app)
    register_errors(app)
    register_observability(app)
    register_cli(app)
    register_celery(app)
    return app


def register_logging(app: Flask) -> None:
    from taskapp.log_format import configure_logging

    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])


def register_extensions(app: Flask) -> None:
    from taskapp import metrics
    from taskapp.auth.tokens import init_jwt
    from taskapp.db import drop_dead_connections
    from taskapp.extensions import db, init_limiter, jwt, migrate
    from taskapp.features import import_models
    from taskapp.web.api import api
    from taskapp.web.docs import register_docs_assets

    import_models()
    _ensure_sqlite_dir(app.config["SQLALCHEMY_DATABASE_URI"])
    metrics.count_pool(app.config)
    db.init_app(app)
    with app.app_context():
        drop_dead_connections(db.engine)
    migrate.init_app(app, db, directory=_migrations_dir())
    jwt.init_app(app)
    init_jwt(app, jwt)
    init_limiter(app)
    register_docs_assets(app)
    api.init_app(app, spec_kwargs=_spec_kwargs())


def install_listeners() -> None:
    """Every global SQLAlchemy Session listener, installed here and only here (once per
    process): the audit trail's, then each feature's."""
    from taskapp import audit
    from taskapp.features import features

    audit.init_audit()
    for feature in features():
        if feature.listeners:
            feature.module(feature.listeners).install_listeners()


def register_blueprints(app: Flask) -> None:
    from taskapp.features import features
    from taskapp.web.api import api
    from taskapp.web.health import blp as health_blp

    for feature in features():
        api.register_blueprint(feature.module("routes").blp)
    app.register_blueprint(health_blp)
    register_task_renderer(app)


def register_task_renderer(app: Flask) -> None:
    """Webhook payloads show a task exactly as the API does: the relay (a domain module,
    which imports no marshmallow) is handed the tasks resource's TaskSchema to dump with."""
    from taskapp.tasks.schemas import TaskSchema

    app.extensions["render_task"] = TaskSchema().dump


def register_errors(app: Flask) -> None:
    from taskapp.web import bodies, csp, failures, policy

    failures.register(app)
    policy.register(app)
    bodies.register(app)
    csp.register(app)


def register_observability(app: Flask) -> None:
    """Request ids, the access line and the request metrics around everything the app
    answers (the outermost WSGI layer); /metrics, /livez and /readyz. /metrics (web/,
    which imports no feature) is handed the webhooks' backlog query for its gauges."""
    from taskapp import metrics
    from taskapp.extensions import db
    from taskapp.web import access
    from taskapp.web.metrics import blp as metrics_blp
    from taskapp.web.request_id import RequestIdMiddleware
    from taskapp.webhooks.queries import backlog

    access.register(app)
    app.wsgi_app = RequestIdMiddleware(app.wsgi_app, on_finish=access.finished)
    app.register_blueprint(metrics_blp)
    app.extensions["webhook_backlog"] = backlog
    with app.app_context():
        metrics.watch_pool(db.engine)


def register_cli(app: Flask) -> None:
    from taskapp import cli

    cli.register(app)


def register_celery(app: Flask) -> None:
    from taskapp import celery_signals
    from taskapp.jobs import celery_init_app

    celery_init_app(app)
    celery_signals.connect(app.config["LOG_FORMAT"])


API_DESCRIPTION = (
    "Task management for teams: JWT login, ADMIN and INTERN roles, tasks with filters, "
    "ordering and pagination, and an activity log of every change. Request bodies are "
    "JSON; each may also be sent form-encoded (application/x-www-form-urlencoded), as "
    "Django REST Framework accepts, with the same validation. Timestamps are UTC with a "
    "'Z'. The project's docs/api.md describes conventions, errors and decisions."
)


def _spec_kwargs() -> dict:
    from taskapp.web.schemas import SpecPlugin

    bearer = {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "Either a JWT access token from POST /api/auth/login/ or a personal access "
            "token (`tap_...`) from POST /api/auth/tokens/. A personal access token may "
            "call an operation only if it holds the scope named in the operation's "
            "`x-required-scope` (and never the operations marked `x-personal-tokens: false`)."
        ),
    }
    return {
        "marshmallow_plugin": SpecPlugin(),
        "info": {"description": API_DESCRIPTION},
        "components": {"securitySchemes": {"bearerAuth": bearer}},
    }


def _migrations_dir() -> str:
    return str(Path(__file__).resolve().parent.parent / "migrations")


def _ensure_sqlite_dir(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
