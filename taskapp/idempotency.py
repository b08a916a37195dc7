"""Idempotency keys: a POST sent again with the same ``Idempotency-Key`` gets the first
answer back instead of creating a second object.

The life of a key, per (user, key):

1. :func:`claim` inserts the row as a claim and commits it on its own connection, so a
   concurrent request with the same key sees it at once (the unique constraint decides
   which of twenty simultaneous requests wins; the others find the winner's row).
2. The request does its work; :func:`complete` writes the answer into the row in the
   request's own transaction, so the created object and the answer to replay commit
   together or not at all. The UPDATE names the claim: if the claim was taken over in
   between (see 4), it matches nothing and the request must roll back.
3. A request that failed (validation, permission...) calls :func:`release`: the claim
   is deleted and nothing is stored, so the client may fix the request and retry.
4. A claim left by a process that died between 1 and 2 is stale after
   ``claim_timeout``; the next request with that key takes it over (:func:`take_over`).
5. Rows older than the retention (24 h) are purged by the beat job (:func:`purge`);
   until then an expired row is replaced by a new claim.
"""

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapp.models import IdempotencyKey

RETENTION = timedelta(hours=24)


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What the key stands for: the method, the path and the body (JSON compared by
    value, so whitespace and key order do not make a different request)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        payload = canonical.encode()
    except ValueError:
        payload = body
    hashed = hashlib.sha256(f"{method} {path}\n".encode())
    hashed.update(payload)
    return hashed.hexdigest()


@dataclass
class Claim:
    id: int
    claim: str


@dataclass
class Stored:
    """A row found instead of a claim: ``status_code`` None means still in flight."""

    fingerprint: str
    status_code: int | None
    headers: dict | None
    body: str | None


def claim(
    engine, user_id: int, key: str, fingerprint_: str, now: datetime, claim_timeout: timedelta
) -> Claim | Stored:
    """Claim the key for this request, or return the row that holds it. Each step is
    its own short transaction on ``engine`` (never the request's session): the claim has
    to be committed, visible to other requests, before the work starts."""
    for _attempt in range(3):
        token = secrets.token_hex(16)
        try:
            with engine.begin() as connection:
                row_id = connection.execute(
                    insert(IdempotencyKey)
                    .values(
                        user_id=user_id,
                        key=key,
                        fingerprint=fingerprint_,
                        claim=token,
                        claimed_at=now,
                        created_at=now,
                    )
                    .returning(IdempotencyKey.id)
                ).scalar_one()
            return Claim(row_id, token)
        except IntegrityError:
            pass
        with engine.begin() as connection:
            row = connection.execute(
                select(IdempotencyKey.__table__).where(
                    IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
                )
            ).first()
            if row is None:
                continue  # purged between our INSERT and SELECT: try again
            if row.created_at <= now - RETENTION:
                _drop_expired(connection, row.id, now)
                continue
            stale = row.status_code is None and row.claimed_at <= now - claim_timeout
            if stale and row.fingerprint == fingerprint_:
                taken = take_over(connection, row.id, row.claim, now)
                if taken is not None:
                    return taken
                continue
        return Stored(row.fingerprint, row.status_code, row.headers, row.body)
    raise RuntimeError("idempotency key kept changing under three claims")


def take_over(connection, row_id: int, old_claim: str, now: datetime) -> Claim | None:
    """Replace a stale claim by ours; None if it was completed or taken meanwhile."""
    token = secrets.token_hex(16)
    taken = connection.execute(
        update(IdempotencyKey.__table__)
        .where(
            IdempotencyKey.id == row_id,
            IdempotencyKey.claim == old_claim,
            IdempotencyKey.status_code.is_(None),
        )
        .values(claim=token, claimed_at=now)
    ).rowcount
    return Claim(row_id, token) if taken == 1 else None


def _drop_expired(connection, row_id: int, now: datetime) -> None:
    connection.execute(
        delete(IdempotencyKey.__table__).where(
            IdempotencyKey.id == row_id, IdempotencyKey.created_at <= now - RETENTION
        )
    )


def complete(session: Session, held: Claim, status_code: int, headers: dict, body: str) -> bool:
    """Store the answer in the request's transaction; False if the claim is no longer
    ours (it went stale and another request took it over): then roll back."""
    stored = session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == held.id, IdempotencyKey.claim == held.claim)
        .values(status_code=status_code, headers=headers, body=body)
        .execution_options(synchronize_session=False)
    ).rowcount
    return stored == 1


def release(engine, held: Claim) -> None:
    """Forget a claim whose request failed: nothing is stored for a failed request."""
    with engine.begin() as connection:
        connection.execute(
            delete(IdempotencyKey.__table__).where(
                IdempotencyKey.id == held.id,
                IdempotencyKey.claim == held.claim,
                IdempotencyKey.status_code.is_(None),
            )
        )


def purge(session: Session, now: datetime) -> int:
    """Delete keys past the retention; returns how many."""
    statement = delete(IdempotencyKey).where(IdempotencyKey.created_at < now - RETENTION)
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount
