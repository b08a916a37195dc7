"""gunicorn settings for taskapp (``gunicorn -c gunicorn.conf.py wsgi:app``; the image's
default command). Every value can still be overridden on the command line.

- Proxies: gunicorn honours X-Forwarded-Proto (and the PROXY protocol) only from the
  addresses in FORWARDED_ALLOW_IPS, the same setting the app uses before it believes
  X-Forwarded-For/-Host (see taskapp/web/policy.py). Unset, nobody is trusted; gunicorn's
  own default would trust loopback.
- Request limits: gunicorn answers requests past these limits itself, with a small HTML
  400 that the app never sees. They are set at gunicorn's maximum, far beyond what a
  legitimate client sends (a request line of 8190 bytes, 200 header fields of 8190 bytes
  each); bodies are limited by the app (1 MiB, 413 in JSON).
- Logs: gunicorn's access log is off. It prints the raw request line, and a calendar
  feed's path is its secret; the app writes one access line per request instead (route
  as the URL rule, request id, user, duration: see docs/operations.md). gunicorn's own
  lines (start, workers, errors) follow LOG_FORMAT like the app's.
- Metrics: with PROMETHEUS_MULTIPROC_DIR set, each worker writes its metrics there and
  /metrics adds them up; a worker that exits is marked dead (child_exit) so its live
  gauges (connections in use) leave the sum.
"""

import os

from gunicorn.glogging import Logger

from taskapp.config import forwarded_allow_ips, log_format
from taskapp.log_format import use_format


class TaskappLogger(Logger):
    """gunicorn's logger with its error log in LOG_FORMAT (JSON in production)."""

    def setup(self, cfg):
        super().setup(cfg)
        use_format(self.error_log, log_format())


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
accesslog = None
logger_class = TaskappLogger
errorlog = "-"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
control_socket_disable = True

forwarded_allow_ips = ",".join(forwarded_allow_ips())
limit_request_line = 8190
limit_request_fields = 200
limit_request_field_size = 8190


def child_exit(_server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        from taskapp.metrics import process_id

        multiprocess.mark_process_dead(process_id(worker.pid))
