"""The webhooks feature's settings (see ``config.FeatureSettings``)."""

from dataclasses import dataclass

from taskapp.config import FeatureSettings


@dataclass(frozen=True)
class WebhookSettings(FeatureSettings):
    secret_key: str
    """The Fernet key that encrypts webhook secrets (WEBHOOK_SECRET_KEY)."""
    timeout_seconds: float
    retry_schedule: tuple[float, ...]
    disable_after_seconds: float
    allowed_networks: tuple[str, ...]
    relay_interval_seconds: float
    secret_overlap_seconds: float
    delivery_retention_days: float
    max_per_user: int
    """Webhooks one user may hold (WEBHOOK_MAX_PER_USER)."""
    queue_lease_seconds: float
    """A delivery handed to a sender or a Celery message is not handed out again for this
    long unless a sender holds or finished it (WEBHOOK_QUEUE_LEASE_SECONDS): the time
    after which a message the broker lost, or a worker died holding, is queued again."""

    @classmethod
    def from_config(cls, config) -> "WebhookSettings":
        return cls(
            secret_key=config["WEBHOOK_SECRET_KEY"],
            timeout_seconds=config["WEBHOOK_TIMEOUT_SECONDS"],
            retry_schedule=tuple(config["WEBHOOK_RETRY_SCHEDULE"]),
            disable_after_seconds=config["WEBHOOK_DISABLE_AFTER_SECONDS"],
            allowed_networks=tuple(config["WEBHOOK_ALLOWED_NETWORKS"]),
            relay_interval_seconds=config["WEBHOOK_RELAY_INTERVAL_SECONDS"],
            secret_overlap_seconds=config["WEBHOOK_SECRET_OVERLAP_SECONDS"],
            delivery_retention_days=config["WEBHOOK_DELIVERY_RETENTION_DAYS"],
            max_per_user=config["WEBHOOK_MAX_PER_USER"],
            queue_lease_seconds=config["WEBHOOK_QUEUE_LEASE_SECONDS"],
        )
