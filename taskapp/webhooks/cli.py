"""``flask webhooks list|deliveries|redeliver``: inspect webhooks and send a message
again, thin over the webhooks domain."""

import click
from sqlalchemy import select

from taskapp.cli import CheckedGroup, commit, json_option, print_rows, when
from taskapp.extensions import db
from taskapp.models import utcnow
from taskapp.users.models import User
from taskapp.webhooks import outbox
from taskapp.webhooks.models import Webhook, WebhookDelivery

webhooks_cli = CheckedGroup("webhooks", help="Inspect webhooks and redeliver messages.")
COMMANDS = (webhooks_cli,)


@webhooks_cli.command("list")
@json_option
def list_webhooks(as_json: bool) -> None:
    """List every webhook: id, owner, state, events, URL."""
    query = select(Webhook, User.username).join(User, User.id == Webhook.owner_id)
    rows = (
        {
            "id": hook.id,
            "owner": owner,
            "state": "active" if hook.is_active else f"disabled ({hook.disabled_reason})",
            "events": ",".join(hook.events),
            "url": hook.url,
        }
        for hook, owner in db.session.execute(query.order_by(Webhook.id))
    )
    print_rows(rows, as_json, "no webhooks")


@webhooks_cli.command("deliveries")
@click.argument("webhook_id", type=int)
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@json_option
def list_deliveries(webhook_id: int, limit: int, as_json: bool) -> None:
    """A webhook's recent deliveries, newest first."""
    if db.session.get(Webhook, webhook_id) is None:
        raise click.ClickException(f"no webhook with id {webhook_id}")
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
    )
    rows = (
        {
            "id": d.id,
            "msg_id": d.msg_id,
            "event": d.event,
            "status": d.status.value,
            "attempts": d.attempts,
            "last": d.last_status_code or d.last_error,
            "created": when(d.created_at),
        }
        for d in db.session.execute(query).scalars()
    )
    print_rows(rows, as_json, f"webhook {webhook_id} has no deliveries")


@webhooks_cli.command("redeliver")
@click.argument("delivery_id", type=int)
def redeliver(delivery_id: int) -> None:
    """Send a delivery's message again, with its original webhook-id."""
    original = db.session.get(WebhookDelivery, delivery_id)
    if original is None:
        raise click.ClickException(f"no delivery with id {delivery_id}")
    again = outbox.redeliver(db.session, original, utcnow())
    commit(f"queued delivery {again.id} ({again.msg_id}, {again.event})")
