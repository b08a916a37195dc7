"""The ladder (``gunicorn bench.ladder_app:app``): minimal apps from taskapp's own libraries,
the step picked by the ``X-Ladder`` header; bench/README.md, "HTTP", lists the steps. Steps g,
h, detail and POST are also served, as ``<step>_plumbed``, by a second app that has
taskapp's per-request plumbing installed by taskapp's own functions (:func:`plumbed_app`)."""

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import flask_smorest
import orjson
from flask import Flask, Response, current_app, request
from flask.views import MethodView
from flask_jwt_extended import JWTManager, get_jwt_identity, jwt_required
from sqlalchemy import bindparam, create_engine, func, insert, select
from webargs.flaskparser import parser

from taskapp.audit import to_json
from taskapp.logs.models import Action, ActivityLog
from taskapp.models import Source, utcnow
from taskapp.tasks.models import Task, TaskChange, TaskCounter
from taskapp.tasks.schemas import TaskQueryArgsSchema, TaskSchema, TaskWriteSchema
from taskapp.users.models import User
from taskapp.web.dumps import compile_dump

DUMP = compile_dump(TaskSchema())
PAGE = Path(os.environ.get("BENCH_BARE_PAGE", os.devnull)).read_bytes()
ENGINE = create_engine(os.environ.get("DATABASE_URL", "sqlite://"), pool_size=5)
USER = select(*User.__table__.c).where(User.id == bindparam("uid"))
ROW_COLUMNS = (*Task.__table__.c, User.username.label("assigned_to_username"))
ROWS = select(*ROW_COLUMNS).join(User, User.id == Task.assigned_to_id)
PAGE_ROWS = (
    ROWS.where(Task.assigned_to_id == bindparam("uid"))
    .where(Task.status.in_(bindparam("status", expanding=True)))
    .order_by(Task.due_date.asc().nulls_last(), Task.id.asc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
COUNT = select(func.coalesce(func.sum(TaskCounter.n), 0)).where(
    TaskCounter.assigned_to_id == bindparam("uid"),
    TaskCounter.status.in_(bindparam("status", expanding=True)),
)
STAMP = select(func.coalesce(func.sum(TaskChange.n), 0)).where(
    TaskChange.assigned_to_id == bindparam("uid")
)
DETAIL = ROWS.where(Task.id == bindparam("id"), Task.assigned_to_id == bindparam("uid"))
INSERT_TASK = insert(Task.__table__).returning(*Task.__table__.c)
INSERT_LOG = insert(ActivityLog.__table__)
DEFAULT_ARGS = {"status": ["PENDING"], "page": 1, "page_size": 20}

SPEC_KEYS = ("API_TITLE", "API_VERSION", "OPENAPI_VERSION")
app = Flask(__name__)
app.config.update(
    JWT_SECRET_KEY=os.environ.get("JWT_SECRET_KEY", "ladder"),
    JWT_ALGORITHM="HS256",
    API_TITLE="ladder",
    API_VERSION="1",
    OPENAPI_VERSION="3.0.3",
)
JWTManager(app)
app.extensions["ladder_engine"] = ENGINE
api = flask_smorest.Api(app)
blp = flask_smorest.Blueprint("ladder", __name__)


def _engine():
    """The step's engine: the ladder's own, or the plumbed app's (:func:`plumbed_app`)."""
    return current_app.extensions["ladder_engine"]


def _user(conn) -> dict:
    return conn.execute(USER, {"uid": int(get_jwt_identity())}).mappings().one()


def _page(conn, user, args, count=None) -> Response:
    size = args["page_size"]
    params = {"uid": user["id"], "status": list(args["status"]), "limit": size}
    rows = conn.execute(PAGE_ROWS, {**params, "offset": (args["page"] - 1) * size})
    results = [DUMP(row) for row in rows]
    nxt = f"{request.base_url}?page={args['page'] + 1}" if count and count > size else None
    body = {"count": count, "next": nxt, "previous": None, "results": results}
    return Response(orjson.dumps(body), mimetype="application/json")


def _listing(args, with_count: bool) -> Response:
    with _engine().connect() as conn:
        user = _user(conn)
        params = {"uid": user["id"], "status": list(args["status"])}
        count = int(conn.execute(COUNT, params).scalar_one()) if with_count else None
        return _page(conn, user, args, count)


def _page_as_built() -> Response:
    return Response(PAGE, mimetype="application/json")


def _user_then_page() -> Response:
    with _engine().connect() as conn:
        _user(conn)
    return _page_as_built()


def _parsed_listing() -> Response:
    args = parser.parse(TaskQueryArgsSchema(), location="query")
    return _listing(_status_values(args), with_count=True)


def _status_values(args: dict) -> dict:
    return {**args, "status": [s.value for s in args.get("status", ())] or ["PENDING"]}


for _step, _view in (
    ("a", _page_as_built),
    ("b", jwt_required()(_page_as_built)),
    ("c", jwt_required()(_user_then_page)),
    ("d", jwt_required()(lambda: _listing(DEFAULT_ARGS, with_count=False))),
    ("e", jwt_required()(lambda: _listing(DEFAULT_ARGS, with_count=True))),
    ("f", jwt_required()(_parsed_listing)),
):
    app.add_url_rule(f"/{_step}/api/tasks/", f"step_{_step}", _view)


@blp.route("/g/api/tasks/")
class StepG(MethodView):
    @jwt_required()
    @blp.arguments(TaskQueryArgsSchema(), location="query")
    @blp.response(200, TaskSchema(many=True))
    def get(self, args):
        return _listing(_status_values(args), with_count=True)


@blp.route("/h/api/tasks/")
class StepH(MethodView):
    @jwt_required()
    @blp.arguments(TaskQueryArgsSchema(), location="query")
    @blp.response(200, TaskSchema(many=True))
    def get(self, _args):
        with _engine().connect() as conn:
            user = _user(conn)
            stamp = conn.execute(STAMP, {"uid": user["id"]}).scalar_one()
        text = f"{stamp}|{user['role']}:{user['id']}|{request.url}"
        etag = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
        if request.if_none_match:  # the bench sends one that never matches our digest
            return Response(status=304, headers={"ETag": f'"{etag}"'})
        return Response(PAGE, mimetype="application/json")


@blp.route("/detail/api/tasks/<int:task_id>/")
class StepDetail(MethodView):
    @jwt_required()
    @blp.response(200, TaskSchema)
    def get(self, task_id):
        with _engine().connect() as conn:
            user = _user(conn)
            row = conn.execute(DETAIL, {"id": task_id, "uid": user["id"]}).one()
        headers = {"ETag": f'"{row.id}-{row.version}"'}
        return Response(orjson.dumps(DUMP(row)), headers=headers, mimetype="application/json")


@blp.route("/post/api/tasks/")
class StepPost(MethodView):
    @jwt_required()
    @blp.arguments(TaskWriteSchema())
    @blp.response(201, TaskSchema)
    def post(self, data):
        with _engine().begin() as conn:
            user = _user(conn)
            now = utcnow()
            values = {"created_at": now, "updated_at": now, **data}
            values.update(assigned_to_id=user["id"], created_by_id=user["id"])
            task = conn.execute(INSERT_TASK, values).one()
            conn.execute(INSERT_LOG, _log_entry(task, user["id"], now))
        row = {**task._mapping, "assigned_to_username": user["username"]}
        body = orjson.dumps(DUMP(SimpleNamespace(**row)))  # the dump reads attributes
        headers = {"ETag": f'"{task.id}-{task.version}"'}
        return Response(body, 201, headers, mimetype="application/json")


def _log_entry(task, actor_id: int, now) -> dict:
    snapshot = {name: to_json(value) for name, value in task._mapping.items()}
    changes = {k: {"from": None, "to": v} for k, v in snapshot.items() if v is not None}
    return {
        "task_id": task.id,
        "task_title": task.title,
        "action": Action.CREATED,
        "changes": changes,
        "actor_id": actor_id,
        "source": Source.API,
        "assignee_id": task.assigned_to_id,
        "created_at": now,
        "task_snapshot": snapshot,
    }


api.register_blueprint(blp)


PIECES = {
    "access_line": "the access line and request metrics (RequestIdMiddleware's on_finish)",
    "request_id": "the request id middleware (and so the access line it writes)",
    "trusted_hosts": "Flask's trusted-host check (TRUSTED_HOSTS, from taskapp's config)",
    "policy": "proxy fix, lower-cased Host, security headers, OPTIONS, 415 (web.policy)",
    "bodies": "JSON body parsing and its limits (web.bodies)",
    "csp": "the HTML pages' CSP hook (web.csp)",
    "route_note": "noting the URL rule (web.access; without it the line names no route)",
    "limiter": "flask-limiter's after-request and teardown hooks",
    "pool": "pool gauges, wait counting and the dead-connection check",
}
"""What :func:`plumbed_app` installs, by the name ``without`` leaves a piece out with;
``request_id`` takes ``access_line`` with it."""
NESTED = {"access_line"}
"""Pieces inside another (the access line is written by the request id middleware)."""


def plumbed_app(without: frozenset[str] = frozenset()) -> Flask:
    """Steps g, h, detail and POST inside what taskapp puts around every request, installed by
    taskapp's own functions: taskapp's config (with its trusted hosts), the request id, the
    access line and the request metrics (``RequestIdMiddleware``, ``access``), the proxy
    policy, the security and CSP headers and the JSON body checks (``policy``, ``csp``,
    ``bodies``), the limiter's hooks, the pool's gauges and the dead-connection check (on an
    engine of its own). Left out: ``failures``' session teardown (no ORM session here), and
    the :data:`PIECES` named in ``without`` (``bench.plumbing`` prices each piece so). A
    taskapp figure over its plumbed step is what its route and authentication add to the
    stack and the plumbing."""
    from taskapp.config import load_config
    from taskapp.extensions import init_limiter
    from taskapp.log_format import configure_logging

    unknown = set(without) - set(PIECES)
    if unknown:
        raise ValueError(f"no such piece: {sorted(unknown)}")
    plumbed = Flask("ladder_plumbed")
    plumbed.config.update(load_config())
    plumbed.config.update({k: app.config[k] for k in SPEC_KEYS})
    if "trusted_hosts" in without:
        plumbed.config["TRUSTED_HOSTS"] = None
    configure_logging(plumbed.config["LOG_LEVEL"], plumbed.config["LOG_FORMAT"])
    JWTManager(plumbed)
    if "limiter" not in without:
        init_limiter(plumbed)
    plumbed.extensions["ladder_engine"] = _plumbed_engine(without)
    plumbed_blp = flask_smorest.Blueprint("plumbed", __name__)
    for step, view in PLUMBED_STEPS.items():
        rule = next(r.rule for r in app.url_map.iter_rules() if r.rule.startswith(f"/{step}/"))
        plumbed_blp.add_url_rule(rule.replace(f"/{step}/", f"/{step}_plumbed/"), view_func=view)
    flask_smorest.Api(plumbed).register_blueprint(plumbed_blp)
    _install_plumbing(plumbed, without)
    return plumbed


def _plumbed_engine(without: frozenset[str]):
    from taskapp import metrics
    from taskapp.db import drop_dead_connections

    if "pool" in without:
        return create_engine(ENGINE.url, pool_size=5)
    engine = create_engine(ENGINE.url, pool_size=5, poolclass=metrics.WaitCountingPool)
    metrics.watch_pool(engine)
    drop_dead_connections(engine)
    return engine


def _install_plumbing(plumbed: Flask, without: frozenset[str]) -> None:
    from taskapp.web import access, bodies, csp, policy
    from taskapp.web.request_id import RequestIdMiddleware

    modules = {"bodies": bodies, "policy": policy, "csp": csp, "route_note": access}
    for name, module in modules.items():
        if name not in without:
            module.register(plumbed)
    if "request_id" not in without:
        on_finish = None if "access_line" in without else access.finished
        plumbed.wsgi_app = RequestIdMiddleware(plumbed.wsgi_app, on_finish=on_finish)


PLUMBED_STEPS = {"g": StepG, "h": StepH, "detail": StepDetail, "post": StepPost}
"""The steps also served inside taskapp's plumbing, as ``<step>_plumbed``."""
_plumbed = plumbed_app()
PLUMBED = {f"{step}_plumbed": _plumbed for step in PLUMBED_STEPS}


def step_from_header(wsgi_app):
    """Route ``X-Ladder: <step>`` to ``/<step>/...`` so every step serves taskapp's URL."""

    def routed(environ, start_response):
        step = environ.get("HTTP_X_LADDER", "a")
        environ["PATH_INFO"] = f"/{step}{environ.get('PATH_INFO', '')}"
        return PLUMBED.get(step, wsgi_app)(environ, start_response)

    return routed


app.wsgi_app = step_from_header(app.wsgi_app)
