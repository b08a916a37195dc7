"""Purges of what callers leave behind, thin: revoked tokens and sessions past their
expiry, dead personal access tokens, and Idempotency-Keys past their 24 h (the keys are
per authenticated caller; the store is the shared ``taskapp.idempotency``)."""

from datetime import timedelta

from celery import shared_task

from taskapp import idempotency
from taskapp.auth import personal_tokens, revocations
from taskapp.extensions import db
from taskapp.jobs import purged as _purged
from taskapp.models import utcnow


def beat_schedule(config) -> dict:
    """Idempotency keys are kept 24 h; the hourly purge removes them within the hour after."""
    return {
        "purge-revoked-tokens": {
            "task": "taskapp.purge_revoked_tokens",
            "schedule": timedelta(hours=6),
        },
        "purge-idempotency-keys": {
            "task": "taskapp.purge_idempotency_keys",
            "schedule": timedelta(hours=1),
        },
        "purge-dead-personal-tokens": {
            "task": "taskapp.purge_dead_personal_tokens",
            "schedule": timedelta(hours=6),
        },
    }


def init_celery(app, celery_app) -> None:
    """Nothing beyond the tasks below."""


@shared_task(name="taskapp.purge_revoked_tokens", ignore_result=True)
def purge_revoked_tokens() -> int:
    """Drop revocation rows for tokens that have expired anyway."""
    return _purged(revocations.purge_expired(db.session, utcnow()), "expired revocation(s)")


@shared_task(name="taskapp.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Drop Idempotency-Keys older than 24 h (their retries are no longer replayed)."""
    return _purged(idempotency.purge(db.session, utcnow()), "idempotency key(s)")


@shared_task(name="taskapp.purge_dead_personal_tokens", ignore_result=True)
def purge_dead_personal_tokens() -> int:
    """Drop personal access tokens that expired or were ended by an owner change."""
    return _purged(personal_tokens.purge_dead(db.session, utcnow()), "dead personal token(s)")
