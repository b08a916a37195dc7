"""Configuration from the environment and the production safety checks."""

import pytest

from taskapp import create_app
from taskapp.config import DEV_JWT_SECRET, DEV_WEBHOOK_SECRET_KEY, load_config

REAL_WEBHOOK_KEY = "q5vYyH8Jm0dQ3aWnZp2xT7rLc4eBfK9sU1gVhN6iO0A="


@pytest.mark.parametrize("secret", [None, DEV_JWT_SECRET, "short-secret"])
def test_production_refuses_weak_secret(monkeypatch, secret):
    monkeypatch.setenv("TASKAPP_ENV", "production")
    if secret is None:
        monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("JWT_SECRET_KEY", secret)
    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_production_starts_with_a_strong_secret(monkeypatch):
    monkeypatch.setenv("TASKAPP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "x" * 48)
    monkeypatch.setenv("TRUSTED_HOSTS", "tasks.example.com, api.example.com")
    monkeypatch.setenv("WEBHOOK_SECRET_KEY", REAL_WEBHOOK_KEY)
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["JWT_SECRET_KEY"] == "x" * 48
    assert app.config["TRUSTED_HOSTS"] == ["tasks.example.com", "api.example.com"]


def test_production_requires_trusted_hosts(monkeypatch):
    monkeypatch.setenv("TASKAPP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "x" * 48)
    monkeypatch.setenv("WEBHOOK_SECRET_KEY", REAL_WEBHOOK_KEY)
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    with pytest.raises(RuntimeError, match="TRUSTED_HOSTS"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize("key", [None, DEV_WEBHOOK_SECRET_KEY, "not-base64-of-32-bytes"])
def test_production_refuses_a_missing_or_weak_webhook_key(monkeypatch, key):
    monkeypatch.setenv("TASKAPP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "x" * 48)
    monkeypatch.setenv("TRUSTED_HOSTS", "tasks.example.com")
    if key is None:
        monkeypatch.delenv("WEBHOOK_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("WEBHOOK_SECRET_KEY", key)
    with pytest.raises(RuntimeError, match="WEBHOOK_SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_environment_drives_configuration(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@db/x")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("TASKAPP_TIMEZONE", "Asia/Tokyo")
    monkeypatch.setenv("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", "60")
    config = load_config()
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/x"
    assert config["CELERY"]["broker_url"] == "redis://cache:6379/0"
    assert config["RATELIMIT_STORAGE_URI"] == "redis://cache:6379/0"
    assert config["RATELIMIT_STORAGE_OPTIONS"]["socket_timeout"] <= 2
    transport = config["CELERY"]["broker_transport_options"]
    assert transport["visibility_timeout"] > 300 + 300
    assert transport["socket_timeout"] <= 2
    assert config["TASKAPP_TIMEZONE"] == "Asia/Tokyo"
    assert config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() == 60
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://other:6379/1")
    assert load_config()["CELERY"]["broker_url"] == "redis://other:6379/1"


def test_embedded_defaults(monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "TASKAPP_ENV", "TRUSTED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    config = load_config()
    assert config["TRUSTED_HOSTS"] == ["127.0.0.1", "localhost"]
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert config["CELERY"]["broker_url"].startswith("sqla+sqlite:///")
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["CELERY"]["broker_transport_options"] == {}
    assert config["TASKAPP_ENV"] == "development"
    assert config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() == 15 * 60
    assert config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds() == 24 * 3600
