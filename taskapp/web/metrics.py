"""``GET /metrics``: the Prometheus text format, from prometheus-client (never written by
hand), off unless METRICS_ENABLED. In production only for ``Authorization: Bearer
$METRICS_TOKEN`` or a client address in METRICS_ALLOWED_NETWORKS (the address the proxy
rules trust). Like /healthz it is an operations endpoint, outside the API's OpenAPI
document.

Besides the counters and histograms of :mod:`taskapp.metrics` (added up across every
process writing to PROMETHEUS_MULTIPROC_DIR), a few gauges are computed at scrape time:
the outbox backlog, the pending deliveries and the broker's queue lengths.
"""

import hmac
import ipaddress
import logging

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from taskapp import metrics
from taskapp.extensions import db
from taskapp.web.failures import rollback_quietly

log = logging.getLogger(__name__)
blp = Blueprint("metrics", __name__)


@blp.get("/metrics")
def scrape():
    if not current_app.config["METRICS_ENABLED"]:
        abort(404)
    _check_access()
    body = generate_latest(_process_registry()) + generate_latest(_scrape_registry())
    return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def _check_access() -> None:
    config = current_app.config
    if config["TASKAPP_ENV"] != "production":
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = config["METRICS_TOKEN"]
    if expected and scheme == "Bearer" and hmac.compare_digest(token.encode(), expected.encode()):
        return
    if _from_allowed_network(config["METRICS_ALLOWED_NETWORKS"]):
        return
    abort(401)


def _from_allowed_network(networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def _process_registry():
    if not metrics.MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    extensions = current_app.extensions
    registry.register(ScrapeTimeCollector(extensions["celery"], extensions["webhook_backlog"]))
    return registry


class ScrapeTimeCollector:
    """Gauges read when Prometheus scrapes: the webhooks' backlog from the database
    (``backlog(session)``, two COUNTs), one queue length per configured Celery queue
    from the broker. A part that cannot be read is left out of the answer (the scrape
    still succeeds; /readyz says what is down)."""

    def __init__(self, celery, backlog):
        self.celery = celery
        self.backlog = backlog

    def collect(self):
        yield from self._database()
        yield from self._broker()

    def _database(self):
        try:
            outbox, pending = self.backlog(db.session)
        except Exception:
            rollback_quietly()
            log.warning("metrics: the database could not be read")
            return
        yield GaugeMetricFamily(
            "taskapp_outbox_pending",
            "Activity-log entries not yet turned into webhook deliveries.",
            value=outbox,
        )
        yield GaugeMetricFamily(
            "taskapp_webhook_pending_deliveries",
            "Webhook deliveries still to be sent or retried.",
            value=pending,
        )

    def _broker(self):
        family = GaugeMetricFamily(
            "taskapp_broker_queue_length",
            "Messages waiting in each Celery queue.",
            labels=["queue"],
        )
        names = sorted(self.celery.amqp.queues.keys()) or [self.celery.conf.task_default_queue]
        try:
            with self.celery.connection_for_read() as connection:
                connection.ensure_connection(max_retries=0, timeout=1)
                channel = connection.default_channel
                for name in names:
                    family.add_metric([name], _queue_length(channel, name))
        except Exception:
            log.warning("metrics: the broker's queues could not be read")
            return
        yield family


def _queue_length(channel, name: str) -> int:
    """Messages waiting in ``name``; 0 for a queue nobody declared yet (no worker has
    started), which a passive declare refuses."""
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except Exception:
        return 0
