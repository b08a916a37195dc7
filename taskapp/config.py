"""Every setting in one place, read from the environment.

The defaults give the embedded mode: a SQLite file and a SQLite-backed Celery broker
under ``instance/``, in-memory rate limits. ``TASKAPP_ENV=production`` turns on the
checks in :func:`check_production`.
"""

import base64
import hmac
import os
from datetime import timedelta
from pathlib import Path

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-in-production"
EMBEDDED_HOSTS = ["127.0.0.1", "localhost"]
"""The Host values the embedded mode answers to (``./scripts/run``, the test client)."""
MIN_SECRET_BYTES = 32
DEV_WEBHOOK_SECRET_KEY = "ZGV2LW9ubHktd2ViaG9vay1rZXktY2hhbmdlLW1lISE="
"""urlsafe base64 of 32 bytes: the Fernet key that encrypts webhook secrets (dev only)."""
DEFAULT_WEBHOOK_RETRY_SCHEDULE = "0,5,300,1800,7200,18000,36000,36000"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("TASKAPP_INSTANCE_DIR") or PROJECT_ROOT / "instance")
"""Beside the code, not in the current directory: ``flask --app /path/to/wsgi.py ...``
run from elsewhere uses the same database as ``./scripts/run``."""


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value in {"true", "1", "yes"}


def _env_seconds(name: str, default: int) -> int:
    """A whole number of seconds, 0 or more; anything else stops the app, naming it."""
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{name} must be a whole number of seconds (0 or more), not {value!r}")
    return int(value)


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _trusted_hosts(env: str) -> list[str]:
    """TRUSTED_HOSTS, comma-separated, in lower case (host names are case-insensitive;
    requests' Host is lower-cased too); unset: the embedded hosts, except in production,
    where it must be set (an empty list trusts nothing; check_production refuses it)."""
    hosts = [host.lower() for host in _env_list("TRUSTED_HOSTS")]
    return hosts or ([] if env == "production" else list(EMBEDDED_HOSTS))


def _calendar_uid_domain(trusted_hosts: list[str]) -> str:
    """CALENDAR_UID_DOMAIN: the domain of the calendar feed's UIDs (``task-<id>@...``);
    unset: the first trusted host (a name this installation answers to). Never the
    request's Host: one task has one UID whatever name the feed is fetched by."""
    explicit = os.environ.get("CALENDAR_UID_DOMAIN", "").strip()
    if explicit:
        return explicit
    return trusted_hosts[0].lstrip(".") if trusted_hosts else "localhost"


def forwarded_allow_ips() -> list[str]:
    """FORWARDED_ALLOW_IPS: the proxies (addresses or networks, comma-separated) allowed
    to set the scheme, host and client address through X-Forwarded-* headers. Read by
    the app and by gunicorn.conf.py; unset: none."""
    return _env_list("FORWARDED_ALLOW_IPS")


def log_format() -> str:
    """LOG_FORMAT: ``json`` or ``text``; unset, JSON in production and text in the
    embedded mode. Read by the app, the Celery processes and gunicorn.conf.py."""
    chosen = os.environ.get("LOG_FORMAT", "").strip().lower()
    if chosen in {"json", "text"}:
        return chosen
    return "json" if os.environ.get("TASKAPP_ENV") == "production" else "text"


def _pool_size() -> dict:
    """DB_POOL_SIZE: connections per process kept open (and as many more on a burst);
    unset: SQLAlchemy's 5 + 10. The stream service, where one process serves thousands
    of clients (each authenticated with a query when it connects), sets it higher."""
    size = os.environ.get("DB_POOL_SIZE")
    return {"pool_size": int(size), "max_overflow": int(size)} if size else {}


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


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


def _token_hash_key(jwt_secret: str) -> str:
    """The key of the personal access tokens' HMAC: ``TOKEN_HASH_KEY``, else derived
    from the JWT secret (so production, which checks that secret, never runs on a
    public default). Changing the key ends every personal access token."""
    explicit = os.environ.get("TOKEN_HASH_KEY")
    if explicit:
        return explicit
    return hmac.new(jwt_secret.encode(), b"taskapp personal access tokens", "sha256").hexdigest()


def load_config() -> dict:
    """Build the configuration mapping from the environment, section by section."""
    redis_url = os.environ.get("REDIS_URL") or None
    jwt_secret = os.environ.get("JWT_SECRET_KEY", DEV_JWT_SECRET)
    env = os.environ.get("TASKAPP_ENV", "development")
    return {
        **_app_settings(env, redis_url),
        **_auth_settings(jwt_secret),
        **_rate_limit_settings(redis_url),
        **_task_settings(),
        **_webhook_settings(),
        **_events_settings(redis_url),
        "CELERY": _celery_settings(_broker_url(redis_url)),
        **OPENAPI_SETTINGS,
    }


def _app_settings(env: str, redis_url: str | None) -> dict:
    trusted_hosts = _trusted_hosts(env)
    return {
        "TASKAPP_ENV": env,
        "TRUSTED_HOSTS": trusted_hosts,
        "CALENDAR_UID_DOMAIN": _calendar_uid_domain(trusted_hosts),
        "TASKAPP_TIMEZONE": os.environ.get("TASKAPP_TIMEZONE", "UTC"),
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL", _sqlite_url("taskapp.sqlite")),
        "SQLALCHEMY_ENGINE_OPTIONS": {**_pool_size()},  # no pre-ping: see taskapp/db.py
        "REDIS_URL": redis_url,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "CORS_ORIGINS": os.environ.get("CORS_ORIGINS", ""),
        "TRUSTED_PROXY_COUNT": _env_int("TRUSTED_PROXY_COUNT", 0),
        "FORWARDED_ALLOW_IPS": forwarded_allow_ips(),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "LOG_FORMAT": log_format(),
        "METRICS_ENABLED": os.environ.get("METRICS_ENABLED", "").lower() in {"1", "true", "yes"},
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or None,
        "METRICS_ALLOWED_NETWORKS": _csv(os.environ.get("METRICS_ALLOWED_NETWORKS", "")),
    }


def _auth_settings(jwt_secret: str) -> dict:
    return {
        "JWT_SECRET_KEY": jwt_secret,
        "TOKEN_HASH_KEY": _token_hash_key(jwt_secret),
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(
            seconds=_env_int("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", 15 * 60)
        ),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(
            seconds=_env_int("JWT_REFRESH_TOKEN_LIFETIME_SECONDS", 24 * 60 * 60)
        ),
        "JWT_ROTATE_REFRESH_TOKENS": _env_bool("JWT_ROTATE_REFRESH_TOKENS", True),
        "JWT_REFRESH_REUSE_GRACE_SECONDS": _env_seconds("JWT_REFRESH_REUSE_GRACE_SECONDS", 30),
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "JWT_TOKEN_LOCATION": ["headers"],
        "PASSWORD_HASH_TIME_COST": _env_int("PASSWORD_HASH_TIME_COST", 3),
        "PASSWORD_HASH_MEMORY_KIB": _env_int("PASSWORD_HASH_MEMORY_KIB", 65536),
        "PASSWORD_HASH_PARALLELISM": _env_int("PASSWORD_HASH_PARALLELISM", 4),
        "IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS": _env_int("IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS", 60),
    }


def _rate_limit_settings(redis_url: str | None) -> dict:
    return {
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "5 per minute"),
        "PAT_RATE_LIMIT": os.environ.get("PAT_RATE_LIMIT", "600 per minute"),
        "LOGIN_ADDRESS_RATE_LIMIT": os.environ.get("LOGIN_ADDRESS_RATE_LIMIT", "30 per minute"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_STORAGE_OPTIONS": LIMITER_SOCKET_OPTIONS if redis_url else {},
        # Fixed window: a hit is one atomic INCR (test and count in one step), and a
        # successful login can give its hit back (a moving window cannot).
        "RATELIMIT_STRATEGY": "fixed-window",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    }


def _task_settings() -> dict:
    return {
        "OVERDUE_SWEEP_INTERVAL_SECONDS": _env_int("OVERDUE_SWEEP_INTERVAL_SECONDS", 15 * 60),
        "REMINDER_SWEEP_INTERVAL_SECONDS": _env_int("REMINDER_SWEEP_INTERVAL_SECONDS", 60),
        "SMTP_URL": os.environ.get("SMTP_URL") or None,
        "REMINDER_MAIL_FROM": os.environ.get("REMINDER_MAIL_FROM", "taskapp@localhost"),
        "REMINDER_MAIL_RESEND_AFTER_SECONDS": _env_int(
            "REMINDER_MAIL_RESEND_AFTER_SECONDS", 30 * 60
        ),
    }


def _webhook_settings() -> dict:
    return {
        "WEBHOOK_SECRET_KEY": os.environ.get("WEBHOOK_SECRET_KEY", DEV_WEBHOOK_SECRET_KEY),
        "WEBHOOK_TIMEOUT_SECONDS": _env_float("WEBHOOK_TIMEOUT_SECONDS", 10),
        "WEBHOOK_RETRY_SCHEDULE": [
            float(s)
            for s in _csv(os.environ.get("WEBHOOK_RETRY_SCHEDULE", DEFAULT_WEBHOOK_RETRY_SCHEDULE))
        ],
        "WEBHOOK_DISABLE_AFTER_SECONDS": _env_float("WEBHOOK_DISABLE_AFTER_SECONDS", 5 * 86400),
        "WEBHOOK_ALLOWED_NETWORKS": _csv(os.environ.get("WEBHOOK_ALLOWED_NETWORKS", "")),
        "WEBHOOK_RELAY_INTERVAL_SECONDS": _env_float("WEBHOOK_RELAY_INTERVAL_SECONDS", 1),
        "WEBHOOK_SECRET_OVERLAP_SECONDS": _env_float("WEBHOOK_SECRET_OVERLAP_SECONDS", 86400),
        "WEBHOOK_DELIVERY_RETENTION_DAYS": _env_float("WEBHOOK_DELIVERY_RETENTION_DAYS", 30),
        "WEBHOOK_MAX_PER_USER": _env_int("WEBHOOK_MAX_PER_USER", 10),
        "WEBHOOK_QUEUE_LEASE_SECONDS": _env_float("WEBHOOK_QUEUE_LEASE_SECONDS", 60),
    }


def _events_settings(redis_url: str | None) -> dict:
    """The sync feed and the event stream (taskapp/events, docs/live.md)."""
    return {
        "CHANGES_RETENTION_DAYS": _env_float("CHANGES_RETENTION_DAYS", 30),
        "EVENTS_POLL_SECONDS": _env_float("EVENTS_POLL_SECONDS", 1 if redis_url else 0.2),
        "EVENTS_HEARTBEAT_SECONDS": _env_float("EVENTS_HEARTBEAT_SECONDS", 15),
        "EVENTS_CREDENTIAL_CHECK_SECONDS": _env_float("EVENTS_CREDENTIAL_CHECK_SECONDS", 2),
        "EVENTS_TICKET_SECONDS": _env_float("EVENTS_TICKET_SECONDS", 60),
    }


def _celery_settings(broker_url: str) -> dict:
    return {
        "broker_url": broker_url,
        "broker_transport_options": _broker_options(broker_url),
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "beat_schedule_filename": str(INSTANCE_DIR / "celerybeat-schedule"),
    }


OPENAPI_SETTINGS = {
    "API_TITLE": "taskapp",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs/",
    "OPENAPI_REDOC_PATH": "/redoc/",
}


def check_production(config: dict) -> None:
    """Refuse to run production with a secret anyone can read in this repository, or
    without the list of Host values it may answer to."""
    if config["TASKAPP_ENV"] != "production":
        return
    secret = config.get("JWT_SECRET_KEY") or ""
    if secret == DEV_JWT_SECRET or len(secret.encode()) < MIN_SECRET_BYTES:
        raise RuntimeError(
            "TASKAPP_ENV=production needs JWT_SECRET_KEY set to a random value of at "
            f"least {MIN_SECRET_BYTES} bytes (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`)."
        )
    if not config.get("TRUSTED_HOSTS"):
        raise RuntimeError(
            "TASKAPP_ENV=production needs TRUSTED_HOSTS: the comma-separated host names "
            "clients use to reach the API (e.g. `tasks.example.com`); any other Host "
            "header is answered 400."
        )
    _check_webhook_key(config.get("WEBHOOK_SECRET_KEY") or "")
    if config.get("METRICS_ENABLED") and not (
        config.get("METRICS_TOKEN") or config.get("METRICS_ALLOWED_NETWORKS")
    ):
        raise RuntimeError(
            "TASKAPP_ENV=production with METRICS_ENABLED needs METRICS_TOKEN (Prometheus "
            "sends it as a bearer token) or METRICS_ALLOWED_NETWORKS (the scraper's "
            "addresses): /metrics is never open to everyone in production."
        )


def _check_webhook_key(key: str) -> None:
    try:
        valid = len(base64.urlsafe_b64decode(key.encode())) == 32
    except (ValueError, TypeError):
        valid = False
    if key == DEV_WEBHOOK_SECRET_KEY or not valid:
        raise RuntimeError(
            "TASKAPP_ENV=production needs WEBHOOK_SECRET_KEY set to the urlsafe base64 of "
            "32 random bytes (e.g. `python -c 'import base64, os; "
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'`)."
        )


class FeatureSettings:
    """Base of a feature's settings: a small frozen dataclass with ``from_config``, built
    from the app's configuration on first use and then kept on the app (:meth:`of`), so
    that domain functions get it passed in and never read ``current_app``."""

    @classmethod
    def from_config(cls, config):
        raise NotImplementedError

    @classmethod
    def of(cls, app):
        key = f"taskapp.settings:{cls.__module__}.{cls.__qualname__}"
        found = app.extensions.get(key)
        if found is None:
            found = app.extensions[key] = cls.from_config(app.config)
        return found
