"""What every Celery task does around its work, through Celery's signals (so the tasks
in jobs.py and the domain modules stay free of it):

- the task's id is the job id of the activity-log entries it writes and of the log
  lines written meanwhile (:mod:`taskapp.origin`);
- one line per finished job: ``job`` (the task's name), ``job_id``, ``duration_ms``,
  ``outcome`` (``success``, ``failure``, ``retry``); at DEBUG when a periodic job
  found nothing to do (the webhook tick runs every second; it logs its own INFO line
  when it relayed or queued something);
- the worker's and beat's log in LOG_FORMAT (Celery installs its own handlers), with
  Celery's own per-task lines ("received", "succeeded") off: the job line replaces them,
  and beat's line for each tick it sends is dropped.

Signals are process-global; :func:`connect` is idempotent (``dispatch_uid``).
"""

import logging
import time

from celery import signals

from taskapp import origin
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
REPLACED_CELERY_LOGGERS = ("celery.app.trace", "celery.worker.strategy")
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
    for hook in FINISHED_HOOKS:
        hook(name, outcome, seconds)


FINISHED_HOOKS: list = []
"""Called with ``(job name, outcome, seconds)`` after each job (the job metrics)."""


class DropTickSends(logging.Filter):
    """Beat announces every task it sends; the webhook tick's (every second) is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(str(arg) in QUIET_JOBS for arg in (record.args or ()))


def _logging_ready(logger=None, **_):
    use_format(logger, _settings["log_format"])
    for name in REPLACED_CELERY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    beat = logging.getLogger("celery.beat")
    if not any(isinstance(f, DropTickSends) for f in beat.filters):
        beat.addFilter(DropTickSends())


def _task_logging_ready(logger=None, **_):
    use_format(logger, _settings["log_format"])


def connect(log_format: str) -> None:
    _settings["log_format"] = log_format
    signals.task_prerun.connect(_started, weak=False, dispatch_uid="taskapp.started")
    signals.task_postrun.connect(_finished, weak=False, dispatch_uid="taskapp.finished")
    signals.after_setup_logger.connect(_logging_ready, weak=False, dispatch_uid="taskapp.log")
    signals.after_setup_task_logger.connect(
        _task_logging_ready, weak=False, dispatch_uid="taskapp.task_log"
    )
