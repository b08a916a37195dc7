"""The tasks feature's settings (see ``config.FeatureSettings``)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from taskapp.config import FeatureSettings


@dataclass(frozen=True)
class TaskSettings(FeatureSettings):
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
