"""Which request or job is running now: its request id (the web side sets it) or its
Celery task id (the job side sets it), in a context variable.

The activity log's ``request_id`` and ``job_id`` columns take their defaults from here
(see :class:`taskapp.logs.models.ActivityLog`), so every entry records what wrote it however
it is inserted: by the audit listener's flush, or set-based by a sweep's INSERT ... SELECT
(SQLAlchemy evaluates a Python default once for such a statement). This module imports
nothing of Flask or Celery: the web side and the job side call :func:`serving` and
:func:`running_job`; the log formatter reads :func:`request_id` too.
"""

from contextlib import contextmanager
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("taskapp_request_id", default=None)
_job_id: ContextVar[str | None] = ContextVar("taskapp_job_id", default=None)


def request_id() -> str | None:
    return _request_id.get()


def job_id() -> str | None:
    return _job_id.get()


@contextmanager
def serving(value: str):
    """Mark the code run inside as serving the request ``value``."""
    token = _request_id.set(value)
    try:
        yield
    finally:
        _request_id.reset(token)


def start_job(value: str | None) -> None:
    """Mark what this thread runs next as the job ``value`` (Celery's task_prerun)."""
    _job_id.set(value)


def end_job() -> None:
    _job_id.set(None)
