# syntax=docker/dockerfile:1
# taskapp production image: one image for every role.
#   web      gunicorn -c gunicorn.conf.py wsgi:app  (the default CMD below)
#   migrate  flask --app wsgi db upgrade && flask --app wsgi db grant-app-role taskapp_app
#   worker   celery -A wsgi.celery worker --loglevel=INFO
#   beat     celery -A wsgi.celery beat --loglevel=INFO
# docker-compose.yml wires them together; docs/production.md explains how to run it.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TASKAPP_ENV=production \
    TASKAPP_INSTANCE_DIR=/app/instance \
    FLASK_APP=wsgi \
    WEB_CONCURRENCY=4

WORKDIR /app

# Runtime dependencies only (all pinned, all binary wheels: no compiler in the image).
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# An unprivileged user. The code stays owned by root (read-only to the app); the only
# writable place is the instance directory (Celery Beat's schedule file lives there).
RUN groupadd --system --gid 10001 taskapp \
    && useradd --system --uid 10001 --gid taskapp --home-dir /app/instance \
       --no-create-home --shell /usr/sbin/nologin taskapp \
    && mkdir -p /app/instance \
    && chown taskapp:taskapp /app/instance

COPY wsgi.py gunicorn.conf.py ./
COPY migrations ./migrations
COPY deploy/stream.gunicorn.conf.py ./deploy/
COPY taskapp ./taskapp

# Numeric, so an orchestrator's run-as-non-root check can verify it.
USER 10001:10001

EXPOSE 8000

# python, not curl: the slim image has no curl. urlopen raises on a 503, so an
# unreachable database makes the container unhealthy. This checks the web role; the
# compose file gives worker and beat their own (celery inspect ping) checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4).status == 200 else 1)"]

# Exec form: no shell in between, so gunicorn gets SIGTERM directly. gunicorn.conf.py sets the
# bind (0.0.0.0:8000), WEB_CONCURRENCY workers, access log on stdout and errors on stderr,
# /dev/shm for worker heartbeats, no control socket, X-Forwarded-* only from
# FORWARDED_ALLOW_IPS, and the request-line/header limits.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
