"""The tasks feature's settings: one small typed object, built once per app from its
configuration (itself read from the environment in ``taskapp/config.py``) and passed
in to the domain functions, which never read ``current_app``."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class TaskSettings:
    timezone: str
    """The zone whose calendar decides when a task is overdue (TASKAPP_TIMEZONE)."""
    overdue_sweep_every: timedelta
    reminder_sweep_every: timedelta
    smtp_url: str
    """Where reminder e-mails go (SMTP_URL); empty: no e-mail."""
    reminder_mail_from: str
    reminder_mail_resend_after: timedelta

    @property
    def mails(self) -> bool:
        return bool(self.smtp_url)

    def today(self) -> date:
        """Today's date in :attr:`timezone`, not the server's."""
        return datetime.now(ZoneInfo(self.timezone)).date()

    @classmethod
    def from_config(cls, config) -> "TaskSettings":
        return cls(
            timezone=config["TASKAPP_TIMEZONE"],
            overdue_sweep_every=timedelta(seconds=config["OVERDUE_SWEEP_INTERVAL_SECONDS"]),
            reminder_sweep_every=timedelta(seconds=config["REMINDER_SWEEP_INTERVAL_SECONDS"]),
            smtp_url=config["SMTP_URL"],
            reminder_mail_from=config["REMINDER_MAIL_FROM"],
            reminder_mail_resend_after=timedelta(
                seconds=config["REMINDER_MAIL_RESEND_AFTER_SECONDS"]
            ),
        )

    @classmethod
    def of(cls, app) -> "TaskSettings":
        """The app's settings, built from its config on first use."""
        return app.extensions.setdefault("taskapp.task_settings", cls.from_config(app.config))
