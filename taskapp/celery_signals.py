"""What every Celery task does around its work, through Celery's signals (so the tasks
in jobs.py and the domain modules stay free of it):

- the task's id is the job id of the activity-log entries it writes and of the log
  lines written meanwhile (:mod:`taskapp.origin`);
- one line per finished job: ``job`` (the task's name), ``job_id``, ``duration_ms``,
  ``outcome`` (``success``, ``failure``, ``retry``); at DEBUG when a periodic job
  found nothing to do (the webhook tick runs every second; it logs its own INFO line
  when it relayed or queued something);
- the job metrics: ``taskapp_jobs_total{job,outcome}`` and its duration;
- the worker's and beat's log in LOG_FORMAT (Celery installs its own handlers), with
  Celery's own per-task lines ("received", "succeeded") off: the job line replaces them,
  and beat's line for each tick it sends is dropped.

Signals are process-global; :func:`connect` is idempotent (``dispatch_uid``).
"""

import logging
import os
import time

from celery import signals

from taskapp import metrics, origin
from taskapp.log_format import use_format

log = logging.getLogger("taskapp.jobs")
QUIET_JOBS = {"taskapp.webhooks_tick"}
"""Beat's "Sending due task" line is dropped for these (once a second)."""
QUIET_WHEN_IDLE = {
    "taskapp.webhooks_tick",
    "taskapp.mark_overdue",
    "taskapp.send_reminders",
    "taskapp.purge_revoked_tokens",
    "taskapp.purge_idempotency_keys",
    "taskapp.purge_dead_personal_tokens",
    "taskapp.purge_webhook_deliveries",
}
"""Periodic jobs whose line is DEBUG when they succeed having done nothing (returned 0)."""
RECEIVED_LOGGER = "celery.worker.strategy"
TRACE_LOGGER = "celery.app.trace"
_started_at: dict[str, float] = {}
_settings = {"log_format": "text"}


def _started(task_id=None, task=None, **_):
    origin.start_job(task_id)
    _started_at[task_id] = time.perf_counter()


def _finished(task_id=None, task=None, state=None, retval=None, **_):
    started = _started_at.pop(task_id, None)
    seconds = time.perf_counter() - started if started is not None else 0.0
    outcome = (state or "unknown").lower()
    name = getattr(task, "name", None)
    quiet = name in QUIET_WHEN_IDLE and outcome == "success" and not retval
    fields = {"job": name, "duration_ms": round(seconds * 1000, 2), "outcome": outcome}
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "job %s[%s] %s in %.1f ms",
        name,
        task_id,
        outcome,
        fields["duration_ms"],
        extra=fields,
    )
    origin.end_job()
    metrics.JOBS.labels(name or "unknown", outcome).inc()
    metrics.JOB_DURATION.labels(name or "unknown").observe(seconds)


def _process_ended(pid=None, **_):
    """A worker process ends: its live gauges leave the multiprocess sum."""
    if metrics.MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(metrics.process_id(os.getpid()))


class DropTickSends(logging.Filter):
    """Beat announces every task it sends; the webhook tick's (every second) is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(str(arg) in QUIET_JOBS for arg in (record.args or ()))


class DropSuccessLines(logging.Filter):
    """Celery's "Task ... succeeded in" line: the job line says it (and more). Its
    retry and failure lines stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "succeeded in" not in str(record.msg)


def _add_filter(name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


def _logging_ready(logger=None, **_):
    use_format(logger, _settings["log_format"])
    logging.getLogger(RECEIVED_LOGGER).setLevel(logging.WARNING)
    _add_filter(TRACE_LOGGER, DropSuccessLines)
    _add_filter("celery.beat", DropTickSends)


def _task_logging_ready(logger=None, **_):
    use_format(logger, _settings["log_format"])


def connect(log_format: str) -> None:
    _settings["log_format"] = log_format
    signals.task_prerun.connect(_started, weak=False, dispatch_uid="taskapp.started")
    signals.task_postrun.connect(_finished, weak=False, dispatch_uid="taskapp.finished")
    signals.worker_process_shutdown.connect(
        _process_ended, weak=False, dispatch_uid="taskapp.process_ended"
    )
    signals.after_setup_logger.connect(_logging_ready, weak=False, dispatch_uid="taskapp.log")
    signals.after_setup_task_logger.connect(
        _task_logging_ready, weak=False, dispatch_uid="taskapp.task_log"
    )
