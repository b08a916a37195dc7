"""The Celery Beat schedule, read by ``taskapp.jobs`` when the Celery app is built.

The overdue sweep runs every ``OVERDUE_SWEEP_INTERVAL_SECONDS`` (default 15 minutes), so
a task turns overdue within a quarter of an hour after midnight in ``TASKAPP_TIMEZONE``.
The sweep computes "today" itself in that zone; the beat clock only decides how often.
The reminder sweep runs every ``REMINDER_SWEEP_INTERVAL_SECONDS`` (default one minute).
"""

from datetime import timedelta


def beat_schedule(config: dict) -> dict:
    return {
        "mark-overdue": {
            "task": "taskapp.mark_overdue",
            "schedule": timedelta(seconds=config["OVERDUE_SWEEP_INTERVAL_SECONDS"]),
        },
        "send-reminders": {
            "task": "taskapp.send_reminders",
            "schedule": timedelta(seconds=config["REMINDER_SWEEP_INTERVAL_SECONDS"]),
        },
        "purge-revoked-tokens": {
            "task": "taskapp.purge_revoked_tokens",
            "schedule": timedelta(hours=6),
        },
    }
