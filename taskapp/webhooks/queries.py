"""Which webhooks and deliveries a listing shows; what the pipeline still owes."""

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from taskapp.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookOutbox


def deliveries_of(webhook: Webhook) -> Select:
    """Newest first."""
    return (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    )


def backlog(session: Session) -> tuple[int, int]:
    """Outbox rows not yet turned into deliveries, and deliveries still to be sent or
    retried (the gauges GET /metrics reads when scraped)."""
    outbox = session.execute(select(func.count()).select_from(WebhookOutbox)).scalar()
    pending = session.execute(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING)
    ).scalar()
    return outbox, pending
