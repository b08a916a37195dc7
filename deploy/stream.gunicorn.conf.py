"""gunicorn settings for the event stream service (``GET /api/events/``), run beside the
API: ``gunicorn -c deploy/stream.gunicorn.conf.py wsgi:app`` (the compose service
``stream``, port 8001). The proxy sends ``/api/events/`` here, unbuffered.

A stream is a request that lasts hours and mostly waits, so it must not hold one of the
API's threads: this service runs the same app on gevent workers, where a waiting stream
is a parked greenlet (a few tens of KiB) and one worker holds thousands
(``STREAM_WORKER_CONNECTIONS``). Chosen over an ASGI server by measurement (see
docs/live.md): gevent serves the same Flask app and the same synchronous domain code
(psycopg cooperates with gevent's monkey-patching), where ASGI would have needed a second,
asynchronous implementation of the stream and its database access.
"""

import os

from taskapp.config import forwarded_allow_ips

bind = os.environ.get("STREAM_BIND", "0.0.0.0:8001")
worker_class = "gevent"
workers = int(os.environ.get("STREAM_WORKERS", "1"))
worker_connections = int(os.environ.get("STREAM_WORKER_CONNECTIONS", "2000"))
# Streams end by themselves (credentials); on a restart, give them a moment, then go:
# clients reconnect with Last-Event-ID and lose nothing.
graceful_timeout = 5
accesslog = "-"
errorlog = "-"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
control_socket_disable = True

forwarded_allow_ips = ",".join(forwarded_allow_ips())
limit_request_line = 8190
limit_request_fields = 200
limit_request_field_size = 8190
