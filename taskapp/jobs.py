"""Celery wiring (the pattern of Flask's "Background Tasks with Celery"). Each feature
brings its own thin periodic tasks in its ``jobs.py`` (``tasks``, ``auth``, ``webhooks``)
with its beat entries (``beat_schedule(config)``); the work itself lives in the
features' domain modules. The schedule is the union of the features' entries."""

import logging

from celery import Celery, Task
from flask import Flask

from taskapp.extensions import db
from taskapp.features import features

log = logging.getLogger(__name__)


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app from ``app.config["CELERY"]``; every task runs inside an
    application context of ``app``. The features' tasks are imported, and their beat
    entries collected, from the one list of features."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    _poll_embedded_broker_often(app.config["CELERY"]["broker_url"])
    celery_app.conf.beat_schedule = beat_schedule(app.config)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    for feature in features():
        if feature.jobs:
            feature.module("jobs").init_celery(app, celery_app)
    return celery_app


def beat_schedule(config) -> dict:
    """Every feature's periodic tasks (see each ``<feature>/jobs.py``)."""
    schedule = {}
    for feature in features():
        if feature.jobs:
            schedule.update(feature.module("jobs").beat_schedule(config))
    return schedule


EMBEDDED_POLLING_SECONDS = 0.2


def _poll_embedded_broker_often(broker_url: str) -> None:
    """The embedded (SQLite) broker is polled; kombu's default of once a second would add
    up to 2 s to a webhook's latency (the tick, then the delivery message). Its
    transport passes every transport option on to ``create_engine``, so the interval is
    set on the transport class instead (this process only)."""
    if broker_url.startswith("sqla+"):
        from kombu.transport import sqlalchemy as sqla_transport

        sqla_transport.Transport.polling_interval = EMBEDDED_POLLING_SECONDS


def purged(count: int, what: str) -> int:
    """Commit a purge the domain function just made, and log how many rows it dropped."""
    db.session.commit()
    log.info("purged %d %s", count, what)
    return count
