"""Which webhooks and deliveries a listing shows."""

from sqlalchemy import Select, select

from taskapp.models import Webhook, WebhookDelivery


def deliveries_of(webhook: Webhook) -> Select:
    """Newest first."""
    return (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    )
