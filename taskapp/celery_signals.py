"""What every Celery task does around its work, through Celery's signals (so the tasks
in jobs.py and the domain modules stay free of it): the task's id is the job id of the
activity-log entries it writes (:mod:`taskapp.origin`).

Signals are process-global; :func:`connect` is idempotent (``dispatch_uid``).
"""

from celery import signals

from taskapp import origin


def _started(task_id=None, task=None, **_):
    origin.start_job(task_id)


def _finished(task_id=None, task=None, **_):
    origin.end_job()


def connect() -> None:
    signals.task_prerun.connect(_started, weak=False, dispatch_uid="taskapp.started")
    signals.task_postrun.connect(_finished, weak=False, dispatch_uid="taskapp.finished")
