"""The Prometheus metrics taskapp produces (prometheus-client), defined once here and
updated from the edges: the web layer (request metrics, logins, limits, revocations),
the Celery task layer (deliveries, sweeps, mails) and SQLAlchemy's pool. The domain
modules know nothing of them. Values computed when Prometheus scrapes (the outbox, the
pending deliveries, the broker's queues) are collected by ``taskapp.web.metrics``.

Several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (it must be set before this
module is imported, i.e. in the environment), every process (gunicorn's workers, the
Celery worker's processes, beat; in compose, one volume shared by the web, worker and
beat containers) writes its values to files there, named by host and pid, and
``GET /metrics`` adds them up. Unset, each process keeps its own values (the embedded
mode: one process serves the API).
"""

import os
import socket

from prometheus_client import Counter, Gauge, Histogram, values
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
HOST = socket.gethostname()


def process_id(pid: int | None = None) -> str:
    """A process's name in the multiprocess directory: host name and pid, because
    compose's containers (web, worker, beat) share the directory but not a pid space."""
    return f"{HOST}_{pid if pid is not None else os.getpid()}"


if MULTIPROCESS:
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)

FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SLOW = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600)
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
UNMATCHED = "<unmatched>"

HTTP_REQUESTS = Counter(
    "taskapp_http_requests", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "taskapp_http_request_duration_seconds",
    "Time from the request's arrival in the app to the end of its answer.",
    ["method", "route"],
    buckets=FAST,
)
LOGIN_FAILURES = Counter(
    "taskapp_login_failures", "Logins refused for bad credentials or an inactive user."
)
RATE_LIMITED = Counter("taskapp_rate_limited", "Requests answered 429.", ["limit"])
TOKENS_REVOKED = Counter(
    "taskapp_tokens_revoked", "Credentials ended on purpose: logouts, personal tokens revoked."
)
WEBHOOK_DELIVERIES = Counter(
    "taskapp_webhook_deliveries",
    "Webhook delivery attempts by what they led to.",
    ["outcome"],
)
WEBHOOK_LAG = Histogram(
    "taskapp_webhook_delivery_lag_seconds",
    "From the change's commit (its activity-log entry) to the first delivery attempt.",
    buckets=LAG,
)
OVERDUE_SWEEP = Histogram(
    "taskapp_overdue_sweep_duration_seconds", "Overdue sweep runs (jobs).", buckets=SLOW
)
OVERDUE_MARKED = Counter("taskapp_overdue_marked", "Tasks the overdue sweep marked OVERDUE.")
REMINDER_SWEEP = Histogram(
    "taskapp_reminder_sweep_duration_seconds", "Reminder sweep runs (jobs).", buckets=SLOW
)
REMINDERS_ANNOUNCED = Counter("taskapp_reminders_announced", "Reminders the sweep announced.")
REMINDER_MAILS = Counter(
    "taskapp_reminder_mails", "Reminder e-mails by outcome (sent, failed).", ["outcome"]
)
JOBS = Counter("taskapp_jobs", "Celery jobs finished, by name and outcome.", ["job", "outcome"])
JOB_DURATION = Histogram(
    "taskapp_job_duration_seconds", "Celery job run time.", ["job"], buckets=SLOW
)
POOL_IN_USE = Gauge(
    "taskapp_db_pool_in_use",
    "Database connections checked out of the pool (all processes).",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "taskapp_db_pool_overflow",
    "Connections open beyond the pool's size (all processes).",
    multiprocess_mode="livesum",
)
POOL_WAITS = Counter(
    "taskapp_db_pool_waits",
    "Checkouts that found the pool exhausted and had to wait for a connection.",
)


def observe_request(method: str, route: str | None, status: int | None, seconds: float) -> None:
    method = method if method in METHODS else "OTHER"
    route = route or UNMATCHED
    HTTP_REQUESTS.labels(method, route, str(status or 0)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


class WaitCountingPool(QueuePool):
    """SQLAlchemy's QueuePool, counting the checkouts that must wait (every connection
    taken and no overflow left): the one moment its events do not show."""

    def _do_get(self):
        if self._max_overflow > -1 and self._overflow >= self._max_overflow and self._pool.empty():
            POOL_WAITS.inc()
        return super()._do_get()


def count_pool(config: dict) -> None:
    """Use :class:`WaitCountingPool` where SQLAlchemy would use a QueuePool anyway
    (PostgreSQL, a SQLite file); an in-memory SQLite keeps its own pool."""
    url = config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"):
        return
    options = config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    options.setdefault("poolclass", WaitCountingPool)


def watch_pool(engine) -> None:
    """Keep the in-use and overflow gauges from the pool's events (once per engine)."""
    pool = engine.pool
    if getattr(pool, "_taskapp_watched", False):
        return
    pool._taskapp_watched = True

    def overflow() -> int:
        counted = getattr(pool, "overflow", None)
        return max(counted(), 0) if counted else 0

    @event.listens_for(pool, "checkout")
    def _checked_out(_dbapi, _record, _proxy) -> None:
        POOL_IN_USE.inc()
        POOL_OVERFLOW.set(overflow())

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi, _record) -> None:
        POOL_IN_USE.dec()
        POOL_OVERFLOW.set(overflow())
