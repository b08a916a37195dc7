"""The one list of feature packages. The app factory walks it, and so does
``tests/shared/test_layout.py``: a feature is added to the app by adding it here.

Each package says in its ``__init__.py`` what it adds (``FEATURE = Feature(...)``):

- ``routes.py`` with ``blp``, the smorest blueprint (every feature has one);
- ``cli.py`` with ``COMMANDS``, the click groups it adds to ``flask``;
- ``jobs.py`` with ``beat_schedule(config)``, its periodic tasks (its Celery tasks are
  ``@shared_task``s, registered by importing the module);
- ``listeners``: the module whose ``install_listeners()`` adds its global Session
  listeners (installed once per process by the factory's ``install_listeners``);
- ``models.py``, its tables, on the one ``Base`` of ``taskapp/models.py``
  (:func:`import_models` imports them all).

Importing this module imports the packages' ``__init__`` files only, never their routes.
"""

from dataclasses import dataclass
from functools import cache
from importlib import import_module

from sqlalchemy import MetaData

PACKAGES = ("auth", "users", "tasks", "logs", "webhooks", "events")


@dataclass(frozen=True)
class Feature:
    name: str
    cli: bool = False
    jobs: bool = False
    listeners: str | None = None
    """A module (e.g. ``"jobs"``) of the package holding ``install_listeners()``."""
    models: bool = False

    @property
    def package(self) -> str:
        return f"taskapp.{self.name}"

    def module(self, name: str):
        return import_module(f"{self.package}.{name}")


@cache
def features() -> tuple[Feature, ...]:
    """Every feature, in registration order (the same tuple on every call)."""
    return tuple(import_module(f"taskapp.{name}").FEATURE for name in PACKAGES)


def import_models() -> MetaData:
    """Import every feature's models and return the metadata now holding every table.
    The factory calls it before anything reads ``db.metadata`` (Alembic's autogenerate,
    ``flask db``) or configures the mappers; so does code reading the metadata without
    an app (the tests' list of tables)."""
    from taskapp.models import Base

    for feature in features():
        if feature.models:
            feature.module("models")
    return Base.metadata
