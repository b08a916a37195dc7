"""Webhooks: CRUD, secret rotation, ping, the delivery log and redelivery."""

from flask import current_app
from flask.views import MethodView

from taskapp.extensions import db
from taskapp.models import utcnow
from taskapp.visibility import visible_webhooks
from taskapp.web.api import ID_IN_PATH, Blueprint
from taskapp.web.paging import paginate
from taskapp.web.permissions import current_user
from taskapp.webhooks import service
from taskapp.webhooks.queries import deliveries_of
from taskapp.webhooks.schemas import (
    DeliveryPageSchema,
    DeliverySchema,
    ListArgsSchema,
    WebhookPageSchema,
    WebhookPatchSchema,
    WebhookSchema,
    WebhookWithSecretSchema,
    WebhookWriteSchema,
)
from taskapp.webhooks.settings import WebhookSettings

blp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks", description="Webhooks")
NOT_VISIBLE = "No such webhook, or not the caller's"


def _with_secret(webhook, secret: str):
    """The one answer that carries the secret (never stored in clear, never shown again)."""
    webhook.secret = secret
    return webhook


@blp.route("/")
class Webhooks(MethodView):
    @blp.auth_required(scope="webhooks:read")
    @blp.arguments(ListArgsSchema, location="query")
    @blp.response(200, WebhookPageSchema)
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """List the caller's webhooks (an ADMIN: every webhook)"""
        return paginate(visible_webhooks(current_user), args["page"], args["page_size"])

    @blp.auth_required(scope="webhooks:write")
    @blp.idempotent()
    @blp.arguments(WebhookWriteSchema)
    @blp.response(201, WebhookWithSecretSchema)
    def post(self, data):
        """Register a webhook; the answer shows its secret, once"""
        webhook, secret = service.create(
            db.session, current_user, data, WebhookSettings.of(current_app), utcnow()
        )
        db.session.commit()
        return _with_secret(webhook, secret)


@blp.route(f"/<{ID_IN_PATH}:webhook_id>/")
class WebhookById(MethodView):
    @blp.auth_required(scope="webhooks:read")
    @blp.response(200, WebhookSchema)
    @blp.not_found(NOT_VISIBLE)
    def get(self, webhook_id):
        """One webhook"""
        return service.get_visible(db.session, current_user, webhook_id)

    @blp.auth_required(scope="webhooks:write")
    @blp.arguments(WebhookPatchSchema(partial=True), required=False)
    @blp.response(200, WebhookSchema)
    @blp.not_found(NOT_VISIBLE)
    def patch(self, data, webhook_id):
        """Change a webhook's url, events, description, or re-enable it"""
        webhook = service.get_visible(db.session, current_user, webhook_id)
        service.update(webhook, data, WebhookSettings.of(current_app))
        db.session.commit()
        return webhook

    @blp.auth_required(scope="webhooks:write")
    @blp.response(204)
    @blp.not_found(NOT_VISIBLE)
    def delete(self, webhook_id):
        """Delete a webhook and its delivery log"""
        service.delete(db.session, service.get_visible(db.session, current_user, webhook_id))
        db.session.commit()


@blp.route(f"/<{ID_IN_PATH}:webhook_id>/rotate-secret/")
class WebhookSecret(MethodView):
    @blp.auth_required(scope="webhooks:write")
    @blp.response(200, WebhookWithSecretSchema)
    @blp.not_found(NOT_VISIBLE)
    def post(self, webhook_id):
        """New secret; the previous one keeps signing for 24 h"""
        webhook = service.get_visible(db.session, current_user, webhook_id)
        secret = service.rotate_secret(webhook, WebhookSettings.of(current_app), utcnow())
        db.session.commit()
        return _with_secret(webhook, secret)


@blp.route(f"/<{ID_IN_PATH}:webhook_id>/ping/")
class WebhookPing(MethodView):
    @blp.auth_required(scope="webhooks:write")
    @blp.response(202, DeliverySchema)
    @blp.not_found(NOT_VISIBLE)
    def post(self, webhook_id):
        """Send a webhook.ping event"""
        webhook = service.get_visible(db.session, current_user, webhook_id)
        delivery = service.ping(db.session, webhook, utcnow())
        db.session.commit()
        return delivery


@blp.route(f"/<{ID_IN_PATH}:webhook_id>/deliveries/")
class WebhookDeliveries(MethodView):
    @blp.auth_required(scope="webhooks:read")
    @blp.arguments(ListArgsSchema, location="query")
    @blp.response(200, DeliveryPageSchema)
    @blp.not_found(NOT_VISIBLE)
    def get(self, args, webhook_id):
        """The messages sent to a webhook, newest first"""
        webhook = service.get_visible(db.session, current_user, webhook_id)
        return paginate(deliveries_of(webhook), args["page"], args["page_size"])


@blp.route(f"/<{ID_IN_PATH}:webhook_id>/deliveries/<{ID_IN_PATH}:delivery_id>/redeliver/")
class WebhookRedeliver(MethodView):
    @blp.auth_required(scope="webhooks:write")
    @blp.response(202, DeliverySchema)
    @blp.not_found(NOT_VISIBLE)
    def post(self, webhook_id, delivery_id):
        """Send a message again, with its original webhook-id"""
        webhook = service.get_visible(db.session, current_user, webhook_id)
        delivery = service.redeliver(db.session, webhook, delivery_id, utcnow())
        db.session.commit()
        return delivery
