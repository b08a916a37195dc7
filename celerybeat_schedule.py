"""The Celery Beat schedule, read by ``taskapp.jobs`` when the Celery app is built.

The overdue sweep runs every ``OVERDUE_SWEEP_INTERVAL_SECONDS`` (default 15 minutes), so
a task turns overdue within a quarter of an hour after midnight in ``TASKAPP_TIMEZONE``.
The sweep computes "today" itself in that zone; the beat clock only decides how often.
Idempotency keys are kept 24 h; the hourly purge removes them within the hour after.
The webhook tick (relay + queue due deliveries) runs every
``WEBHOOK_RELAY_INTERVAL_SECONDS`` (default 1 s): that interval bounds the latency.
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
        "purge-idempotency-keys": {
            "task": "taskapp.purge_idempotency_keys",
            "schedule": timedelta(hours=1),
        },
        "purge-dead-personal-tokens": {
            "task": "taskapp.purge_dead_personal_tokens",
            "schedule": timedelta(hours=6),
        },
        "webhooks-tick": {
            "task": "taskapp.webhooks_tick",
            "schedule": timedelta(seconds=config["WEBHOOK_RELAY_INTERVAL_SECONDS"]),
            # a tick not taken within a few intervals is useless: the next one does its work
            "options": {"expires": max(5.0, 5 * config["WEBHOOK_RELAY_INTERVAL_SECONDS"])},
        },
        "purge-webhook-deliveries": {
            "task": "taskapp.purge_webhook_deliveries",
            "schedule": timedelta(hours=1),
        },
    }
