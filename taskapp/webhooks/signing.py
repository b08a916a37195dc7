"""Webhook secrets and signatures (Standard Webhooks 1.0).

A secret is ``whsec_`` + base64 of 32 random bytes; the HMAC key is those bytes. Secrets
are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``)
under ``WEBHOOK_SECRET_KEY``: a database dump alone does not reveal them. The signature
is ``v1,`` + base64 of HMAC-SHA256 over ``"{msg_id}.{timestamp}.{body}"`` (stdlib hmac),
one per live secret, space-separated.
"""

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def encrypt(secret: str, key: str) -> str:
    return Fernet(key.encode()).encrypt(secret.encode()).decode()


def decrypt(token: str, key: str) -> str:
    return Fernet(key.encode()).decrypt(token.encode()).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(live_secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    return " ".join(signature(s, msg_id, timestamp, body) for s in live_secrets)
