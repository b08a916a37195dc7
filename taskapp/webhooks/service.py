"""The rules of webhooks: who sees which, URL checks, secrets, ping and redelivery.
Nothing here commits; the caller does, once."""

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from taskapp.errors import InvalidField, NotFound
from taskapp.users.models import User
from taskapp.visibility import visible_webhooks
from taskapp.webhooks import outbox, signing, targets
from taskapp.webhooks.models import Webhook, WebhookDelivery
from taskapp.webhooks.settings import WebhookSettings


def get_visible(session: Session, user: User, webhook_id: int) -> Webhook:
    """The webhook if ``user`` owns it (or is an ADMIN); NotFound otherwise."""
    query = visible_webhooks(user).where(Webhook.id == webhook_id)
    webhook = session.execute(query).scalar_one_or_none()
    if webhook is None:
        raise NotFound("Webhook")
    return webhook


def check_url(url: str, config: WebhookSettings) -> None:
    try:
        targets.check_literal(url, config.allowed_networks)
    except targets.RefusedTarget as error:
        raise InvalidField("url", str(error)) from None


def create(session: Session, user: User, data: dict, config: WebhookSettings, now: datetime):
    """A new webhook owned by ``user``; returns it and its secret (shown once)."""
    check_url(data["url"], config)
    check_room(session, user, config.max_per_user)
    secret = signing.new_secret()
    webhook = Webhook(
        owner_id=user.id,
        url=data["url"],
        events=list(dict.fromkeys(data.get("events") or outbox.TASK_EVENTS)),
        description=data.get("description", ""),
        is_active=True,
        secret_encrypted=signing.encrypt(secret, config.secret_key),
        created_at=now,
    )
    session.add(webhook)
    session.flush()
    return webhook, secret


def check_room(session: Session, user: User, limit: int) -> None:
    """At most ``limit`` webhooks per user (disabled ones count: they can be re-enabled).
    The owner's row is locked first (PostgreSQL), so two POSTs at once cannot both take
    the last place; SQLite serialises writers anyway."""
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    owned = session.execute(
        select(func.count()).select_from(Webhook).where(Webhook.owner_id == user.id)
    ).scalar_one()
    if owned >= limit:
        raise InvalidField(
            "non_field_errors",
            f"You already have {owned} webhooks, the most one user may have "
            f"(WEBHOOK_MAX_PER_USER = {limit}). Delete one, or point one at a new URL.",
        )


def update(webhook: Webhook, data: dict, config: WebhookSettings) -> None:
    if "url" in data:
        check_url(data["url"], config)
    if "events" in data:
        data["events"] = list(dict.fromkeys(data["events"]))
    for field in ("url", "events", "description"):
        if field in data:
            setattr(webhook, field, data[field])
    if "is_active" in data:
        webhook.is_active = data["is_active"]
        if webhook.is_active:
            webhook.disabled_reason = None
            webhook.failing_since = None


def delete(session: Session, webhook: Webhook) -> None:
    """The webhook and its delivery log (explicitly: SQLite does not enforce cascades)."""
    outbox.delete_deliveries(session, WebhookDelivery.webhook_id == webhook.id)
    session.delete(webhook)


def rotate_secret(webhook: Webhook, config: WebhookSettings, now: datetime) -> str:
    """A new secret; the current one keeps signing for WEBHOOK_SECRET_OVERLAP_SECONDS."""
    key = config.secret_key
    secret = signing.new_secret()
    webhook.previous_secret_encrypted = webhook.secret_encrypted
    overlap = timedelta(seconds=config.secret_overlap_seconds)
    webhook.previous_secret_expires_at = now + overlap
    webhook.secret_encrypted = signing.encrypt(secret, key)
    return secret


def get_delivery(session: Session, webhook: Webhook, delivery_id: int) -> WebhookDelivery:
    delivery = session.execute(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook.id
        )
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound("WebhookDelivery")
    return delivery


def ping(session: Session, webhook: Webhook, now: datetime) -> WebhookDelivery:
    return outbox.ping(session, webhook, now)


def redeliver(session: Session, webhook: Webhook, delivery_id: int, now: datetime):
    return outbox.redeliver(session, get_delivery(session, webhook, delivery_id), now)
