"""Extension objects, created unbound and bound to an app by :func:`taskapp.create_app`."""

from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from taskapp.api import Api

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
"""Objects keep their values after commit: a view commits once, then dumps what it
wrote, without a second round trip (and relationships are ``lazy="raise"``)."""
migrate = Migrate()
jwt = JWTManager()
api = Api()
limiter = Limiter(key_func=lambda: "global", default_limits=[])
