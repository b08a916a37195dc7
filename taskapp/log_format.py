"""How every process of taskapp writes its log: the web app, gunicorn, the Celery worker
and beat, the CLI.

``LOG_FORMAT=json`` (the default in production): one JSON object per line, by
python-json-logger, with ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg`` and
``request_id`` (null outside a request), ``job_id`` while a Celery job runs, plus the
fields a line was written with (``extra=``: the access line's ``method``, ``route``,
``status``, ``duration_ms``, ``user_id``, ``client``; a job's ``job``, ``outcome``...).
``LOG_FORMAT=text`` (the embedded default): one readable line, the request id in it.

Quiet by default: alembic's plugin set-up (seven INFO lines on every ``flask`` command)
and the development server's own request lines (which print raw paths, secrets in them
included: the access line replaces them) are dropped.
"""

import logging
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

from taskapp import origin

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s %(request_id)s: %(message)s"
QUIET_LOGGERS = {"alembic.runtime.plugins": logging.WARNING}


def _context(record: logging.LogRecord) -> tuple[str | None, str | None]:
    request_id = getattr(record, "request_id", None) or origin.request_id()
    job_id = getattr(record, "job_id", None) or origin.job_id()
    return request_id, job_id


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line; the field names are the project's (see docs/operations.md)."""

    def __init__(self):
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "message": "msg"},
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["ts"] = stamp.replace("+00:00", "Z")
        super().add_fields(log_data, record, message_dict)
        request_id, job_id = _context(record)
        log_data["request_id"] = request_id
        if job_id is not None:
            log_data["job_id"] = job_id


class TextFormatter(logging.Formatter):
    """The readable line, with the request id (``-`` outside a request)."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        request_id, job_id = _context(record)
        record.request_id = request_id or job_id or "-"
        return super().format(record)


def formatter(log_format: str) -> logging.Formatter:
    return JsonLineFormatter() if log_format == "json" else TextFormatter()


class DropServerRequestLines(logging.Filter):
    """Werkzeug's development server logs every request with its raw path (a calendar
    feed's secret included); taskapp's own access line says the same without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.rstrip().endswith('"%s" %s %s'))


def configure_logging(level: str, log_format: str) -> None:
    """Give the process a handler in ``log_format`` unless one is installed already
    (Celery installs its own: see :func:`use_format`; pytest captures), and quiet the
    chatty loggers."""
    logging.captureWarnings(True)  # Python warnings become log lines in the same format
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(log_format))
        root.addHandler(handler)
        root.setLevel(level)
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, DropServerRequestLines) for f in werkzeug.filters):
        werkzeug.addFilter(DropServerRequestLines())


def use_format(logger: logging.Logger, log_format: str) -> None:
    """Put every handler of ``logger`` on ``log_format`` (Celery's and gunicorn's)."""
    for handler in logger.handlers:
        handler.setFormatter(formatter(log_format))
