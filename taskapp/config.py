"""Every setting in one place, read from the environment.

The defaults give the embedded mode: a SQLite file and a SQLite-backed Celery broker
under ``instance/``, in-memory rate limits. ``TASKAPP_ENV=production`` turns on the
checks in :func:`check_production`.
"""

import os
from datetime import timedelta
from pathlib import Path

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-in-production"
MIN_SECRET_BYTES = 32
INSTANCE_DIR = Path(os.environ.get("TASKAPP_INSTANCE_DIR", Path.cwd() / "instance"))


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _sqlite_url(filename: str) -> str:
    return f"sqlite:///{INSTANCE_DIR / filename}"


def _broker_url(redis_url: str | None) -> str:
    explicit = os.environ.get("CELERY_BROKER_URL")
    if explicit:
        return explicit
    if redis_url:
        return redis_url
    return "sqla+" + _sqlite_url("celery-broker.sqlite")


REDIS_SOCKET_OPTIONS = {"socket_timeout": 2, "socket_connect_timeout": 2}
"""A hung Redis must cost a request seconds, not the worker's life."""
LIMITER_SOCKET_OPTIONS = {"socket_timeout": 1, "socket_connect_timeout": 1}
"""A login makes two limiter calls; after the first failure flask-limiter falls back to
memory for the process, so a hung Redis costs the first login about 2 s."""
CELERY_VISIBILITY_TIMEOUT = 900
"""Seconds before a message a worker took but never acknowledged (the worker died) is
delivered again: above the sweep's 300 s time limit plus its longest retry backoff."""


def _broker_options(broker_url: str) -> dict:
    if broker_url.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT, **REDIS_SOCKET_OPTIONS}
    return {}


def load_config() -> dict:
    """Build the configuration mapping from the environment."""
    redis_url = os.environ.get("REDIS_URL") or None
    broker_url = _broker_url(redis_url)
    return {
        "TASKAPP_ENV": os.environ.get("TASKAPP_ENV", "development"),
        "TASKAPP_TIMEZONE": os.environ.get("TASKAPP_TIMEZONE", "UTC"),
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL", _sqlite_url("taskapp.sqlite")),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        "JWT_SECRET_KEY": os.environ.get("JWT_SECRET_KEY", DEV_JWT_SECRET),
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(
            seconds=_env_int("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", 15 * 60)
        ),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(
            seconds=_env_int("JWT_REFRESH_TOKEN_LIFETIME_SECONDS", 24 * 60 * 60)
        ),
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "JWT_TOKEN_LOCATION": ["headers"],
        "PASSWORD_HASH_TIME_COST": _env_int("PASSWORD_HASH_TIME_COST", 3),
        "PASSWORD_HASH_MEMORY_KIB": _env_int("PASSWORD_HASH_MEMORY_KIB", 65536),
        "PASSWORD_HASH_PARALLELISM": _env_int("PASSWORD_HASH_PARALLELISM", 4),
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "5 per minute"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_STORAGE_OPTIONS": LIMITER_SOCKET_OPTIONS if redis_url else {},
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "CORS_ORIGINS": os.environ.get("CORS_ORIGINS", ""),
        "TRUSTED_PROXY_COUNT": _env_int("TRUSTED_PROXY_COUNT", 0),
        "OVERDUE_SWEEP_INTERVAL_SECONDS": _env_int("OVERDUE_SWEEP_INTERVAL_SECONDS", 15 * 60),
        "REMINDER_SWEEP_INTERVAL_SECONDS": _env_int("REMINDER_SWEEP_INTERVAL_SECONDS", 60),
        "SMTP_URL": os.environ.get("SMTP_URL") or None,
        "REMINDER_MAIL_FROM": os.environ.get("REMINDER_MAIL_FROM", "taskapp@localhost"),
        "REMINDER_MAIL_RESEND_AFTER_SECONDS": _env_int(
            "REMINDER_MAIL_RESEND_AFTER_SECONDS", 30 * 60
        ),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "CELERY": {
            "broker_url": broker_url,
            "broker_transport_options": _broker_options(broker_url),
            "task_ignore_result": True,
            "broker_connection_retry_on_startup": True,
            "beat_schedule_filename": str(INSTANCE_DIR / "celerybeat-schedule"),
        },
        "API_TITLE": "taskapp",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs/",
        "OPENAPI_REDOC_PATH": "/redoc/",
    }


def check_production(config: dict) -> None:
    """Refuse to run production with a secret anyone can read in this repository."""
    if config["TASKAPP_ENV"] != "production":
        return
    secret = config.get("JWT_SECRET_KEY") or ""
    if secret == DEV_JWT_SECRET or len(secret.encode()) < MIN_SECRET_BYTES:
        raise RuntimeError(
            "TASKAPP_ENV=production needs JWT_SECRET_KEY set to a random value of at "
            f"least {MIN_SECRET_BYTES} bytes (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`)."
        )
