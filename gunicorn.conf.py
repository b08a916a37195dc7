"""gunicorn settings for taskapp (``gunicorn -c gunicorn.conf.py wsgi:app``; the image's
default command). Every value can still be overridden on the command line.

- Proxies: gunicorn honours X-Forwarded-Proto (and the PROXY protocol) only from the
  addresses in FORWARDED_ALLOW_IPS, the same setting the app uses before it believes
  X-Forwarded-For/-Host (see taskapp/web/policy.py). Unset, nobody is trusted; gunicorn's
  own default would trust loopback.
- Request limits: gunicorn answers requests past these limits itself (414, 431, in JSON,
  see below) and the app never sees them. They are gunicorn's maximum: 200 header
  fields of 8190 bytes each, and a request line of 8190 bytes when it runs alone
  (TRUSTED_PROXY_COUNT=0); behind the edge the request line is limited by the edge only
  (64 KiB). Bodies are limited by the app (1 MiB, 413 in JSON).
- gunicorn's own error answers (a malformed request line or header, a control character
  in a header value, a limit above) are JSON ``{"detail": ...}`` like the app's, not its
  built-in HTML page: :func:`_json_error` replaces ``gunicorn.util.write_error``. nginx
  passes control characters in header values through, so this matters behind the edge
  too (tests/shared/test_edge.py).
- Slow clients: a sync worker is held by a client until its request has arrived, up to
  ``timeout`` (30 s, then the worker is killed and replaced). That is why production runs
  behind the edge (deploy/nginx), which buffers every request before passing it on.
- Logs: gunicorn's access log is off. It prints the raw request line, and a calendar
  feed's path is its secret; the app writes one access line per request instead (route
  as the URL rule, request id, user, duration: see docs/operations.md). gunicorn's own
  lines (start, workers, errors) follow LOG_FORMAT like the app's.
- Metrics: with PROMETHEUS_MULTIPROC_DIR set, each worker writes its metrics there and
  /metrics adds them up; a worker that exits is marked dead (child_exit) so its live
  gauges (connections in use) leave the sum.
"""

import json
import os

from gunicorn import util
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
# Behind the edge (deploy/nginx), which refuses request lines over 64 KiB in JSON,
# gunicorn must pass on the longest request line the spec allows (26,982 bytes, see
# docs/production.md), so it sets none (0); alone, it keeps its maximum of 8190.
behind_proxy = int(os.environ.get("TRUSTED_PROXY_COUNT") or 0) > 0
limit_request_line = 0 if behind_proxy else 8190
limit_request_fields = 200
limit_request_field_size = 8190  # gunicorn's maximum; the spec's largest header is 255


def _json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error answer in the contract's shape (replaces its HTML page)."""
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _json_error


def child_exit(_server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        from taskapp.metrics import process_id

        multiprocess.mark_process_dead(process_id(worker.pid))
