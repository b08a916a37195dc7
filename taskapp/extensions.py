"""Extension objects, created unbound and bound to an app by :func:`taskapp.create_app`."""

from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from taskapp.db import Session
from taskapp.models import Base

db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False, "class_": Session})
"""Objects keep their values after commit: a view commits once, then dumps what it
wrote, without a second round trip (and relationships are ``lazy="raise"``). Reads of a
GET run in autocommit (see taskapp/db.py)."""
migrate = Migrate()
jwt = JWTManager()
limiter = Limiter(key_func=lambda: "global", default_limits=[])


def init_limiter(app) -> None:
    """Bind :data:`limiter` to ``app`` without its check before every request:
    flask-limiter checks application-wide limits there, and taskapp sets none (the
    login's decorated limits check themselves): one hook less on every route."""
    limiter.init_app(app)
    app.before_request_funcs[None].remove(limiter._check_request_limit)
