"""The tasks feature's periodic tasks, thin: the overdue sweep, the reminder sweep and
the reminder e-mails. The work lives in ``overdue.py``, ``reminders.py`` and ``mail.py``.

The overdue sweep runs every ``OVERDUE_SWEEP_INTERVAL_SECONDS`` (default 15 minutes), so
a task turns overdue within a quarter of an hour after midnight in ``TASKAPP_TIMEZONE``.
The sweep computes "today" itself in that zone; the beat clock only decides how often.
The reminder sweep runs every ``REMINDER_SWEEP_INTERVAL_SECONDS`` (default one minute).
"""

import logging
from datetime import date

from celery import shared_task
from flask import current_app
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import DBAPIError

from taskapp import metrics
from taskapp.extensions import db
from taskapp.models import utcnow
from taskapp.tasks import mail, overdue, reminders
from taskapp.tasks.settings import TaskSettings

log = logging.getLogger(__name__)


def beat_schedule(config) -> dict:
    settings = TaskSettings.from_config(config)
    return {
        "mark-overdue": {
            "task": "taskapp.mark_overdue",
            "schedule": settings.overdue_sweep_every,
        },
        "send-reminders": {
            "task": "taskapp.send_reminders",
            "schedule": settings.reminder_sweep_every,
        },
    }


def init_celery(app, celery_app) -> None:
    """Nothing beyond the tasks below."""


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
    day = date.fromisoformat(today) if today else TaskSettings.of(current_app).today()
    try:
        with metrics.OVERDUE_SWEEP.time():
            marked = overdue.mark_overdue(db.session, day)
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    metrics.OVERDUE_MARKED.inc(marked)
    log.info("overdue sweep marked %d task(s)", marked)
    return marked


@shared_task(
    name="taskapp.send_reminders",
    acks_late=True,
    time_limit=300,
    soft_time_limit=240,
    autoretry_for=(DBAPIError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=3,
)
def send_reminders() -> int:
    """Announce the due reminders (see ``reminders``), then enqueue their e-mails."""
    reminded, _owed = run_reminder_sweep()
    log.info("reminder sweep announced %d reminder(s)", len(reminded))
    return len(reminded)


def run_reminder_sweep() -> tuple[list[int], list[int]]:
    """The sweep and its commit, then one mail task per owed e-mail. The mails are
    owed in the database before they are enqueued: a broker that is down now delays
    them until a later sweep enqueues them again (``REMINDER_MAIL_RESEND_AFTER_SECONDS``)."""
    settings = TaskSettings.of(current_app)
    try:
        with metrics.REMINDER_SWEEP.time():
            reminded, owed = reminders.announce(
                db.session,
                utcnow(),
                mail=settings.mails,
                resend_after=settings.reminder_mail_resend_after,
            )
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    metrics.REMINDERS_ANNOUNCED.inc(len(reminded))
    enqueue_mails(owed)
    return reminded, owed


def enqueue_mails(task_ids: list[int]) -> None:
    for task_id in task_ids:
        try:
            send_reminder_mail.delay(task_id)
        except (BrokerError, OSError):
            log.warning("broker unreachable: %d reminder mail(s) stay owed", len(task_ids))
            return


@shared_task(
    name="taskapp.send_reminder_mail",
    acks_late=True,
    time_limit=120,
    autoretry_for=(OSError, DBAPIError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def send_reminder_mail(task_id: int) -> bool:
    """E-mail the reminder of ``task_id`` to its assignee, once. A mail server that is
    down raises (smtplib's errors are OSErrors): the claim rolls back, the mail stays
    owed and Celery retries with exponential backoff."""
    settings = TaskSettings.of(current_app)
    if not settings.mails:
        return False
    try:
        reminder = reminders.claim_mail(db.session, task_id)
        if reminder is not None:
            message = mail.reminder_message(reminder, settings.reminder_mail_from)
            mail.send(settings.smtp_url, message)
        db.session.commit()
    except Exception:
        db.session.rollback()
        metrics.REMINDER_MAILS.labels("failed").inc()
        raise
    if reminder is not None:
        metrics.REMINDER_MAILS.labels("sent").inc()
        log.info("reminder mail for task %d sent to %s", task_id, reminder["email"])
    return reminder is not None
