"""Celery wiring (the pattern of Flask's "Background Tasks with Celery") and the thin
periodic tasks; the work itself lives in the domain modules (overdue.py,
revocations.py, idempotency.py, personal_tokens.py). The beat schedule is read from
``celerybeat_schedule.py``, its one place."""

import logging
from datetime import date

from celery import Celery, Task, shared_task
from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError

from celerybeat_schedule import beat_schedule
from taskapp import idempotency, overdue, personal_tokens, revocations
from taskapp.extensions import db
from taskapp.models import utcnow

log = logging.getLogger(__name__)


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app from ``app.config["CELERY"]``; every task runs inside an
    application context of ``app``."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.conf.beat_schedule = beat_schedule(app.config)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


@shared_task(
    name="taskapp.mark_overdue",
    acks_late=True,
    time_limit=300,
    soft_time_limit=240,
    autoretry_for=(DBAPIError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def mark_overdue(today: str | None = None) -> int:
    """Run the overdue sweep as the system actor; ``today`` (YYYY-MM-DD) for tests."""
    day = date.fromisoformat(today) if today else overdue.today(current_app.config)
    try:
        marked = overdue.mark_overdue(db.session, day)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    log.info("overdue sweep marked %d task(s)", marked)
    return marked


@shared_task(name="taskapp.purge_revoked_tokens", ignore_result=True)
def purge_revoked_tokens() -> int:
    """Drop revocation rows for tokens that have expired anyway."""
    purged = revocations.purge_expired(db.session, utcnow())
    db.session.commit()
    log.info("purged %d expired token revocation(s)", purged)
    return purged


@shared_task(name="taskapp.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Drop Idempotency-Keys older than 24 h (their retries are no longer replayed)."""
    purged = idempotency.purge(db.session, utcnow())
    db.session.commit()
    log.info("purged %d idempotency key(s)", purged)
    return purged


@shared_task(name="taskapp.purge_dead_personal_tokens", ignore_result=True)
def purge_dead_personal_tokens() -> int:
    """Drop personal access tokens that expired or were ended by an owner change."""
    purged = personal_tokens.purge_dead(db.session, utcnow())
    db.session.commit()
    log.info("purged %d dead personal access token(s)", purged)
    return purged
