"""The tasks feature's periodic tasks, thin: the overdue sweep, the reminder sweep and
the reminder e-mails. The work lives in ``overdue.py``, ``reminders.py`` and ``mail.py``.

The overdue sweep runs every ``OVERDUE_SWEEP_INTERVAL_SECONDS`` (default 15 minutes), so
a task turns overdue within a quarter of an hour after midnight in ``TASKAPP_TIMEZONE``.
The sweep computes "today" itself in that zone; the beat clock only decides how often.
The reminder sweep runs every ``REMINDER_SWEEP_INTERVAL_SECONDS`` (default one minute).
"""

import logging
from datetime import date, timedelta

from celery import shared_task
from flask import current_app
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import DBAPIError

from taskapp.extensions import db
from taskapp.models import utcnow
from taskapp.tasks import mail, overdue, reminders

log = logging.getLogger(__name__)


def beat_schedule(config) -> dict:
    return {
        "mark-overdue": {
            "task": "taskapp.mark_overdue",
            "schedule": timedelta(seconds=config["OVERDUE_SWEEP_INTERVAL_SECONDS"]),
        },
        "send-reminders": {
            "task": "taskapp.send_reminders",
            "schedule": timedelta(seconds=config["REMINDER_SWEEP_INTERVAL_SECONDS"]),
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
    day = date.fromisoformat(today) if today else overdue.today(current_app.config)
    try:
        marked = overdue.mark_overdue(db.session, day)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
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
    config = current_app.config
    resend_after = timedelta(seconds=config["REMINDER_MAIL_RESEND_AFTER_SECONDS"])
    try:
        reminded, owed = reminders.announce(
            db.session, utcnow(), mail=bool(config["SMTP_URL"]), resend_after=resend_after
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
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
    config = current_app.config
    if not config["SMTP_URL"]:
        return False
    try:
        reminder = reminders.claim_mail(db.session, task_id)
        if reminder is not None:
            message = mail.reminder_message(reminder, config["REMINDER_MAIL_FROM"])
            mail.send(config["SMTP_URL"], message)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if reminder is not None:
        log.info("reminder mail for task %d sent to %s", task_id, reminder["email"])
    return reminder is not None
