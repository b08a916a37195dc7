"""Conditional GET: ``If-None-Match`` answers 304 (no body) while the ETag still holds.

A detail's ETag is the task's version. A listing's ETag is a digest of a *change stamp*
(a number that grows with every change the caller could see in that listing, read from
counters kept in the same transaction as the changes: no page query runs for it), the
caller's id and role, and the full request URL (filters, ordering, page, cursor).
"""

import hashlib

from flask import Response, request
from sqlalchemy import Select

from taskapp.db import reads
from taskapp.extensions import db


def not_modified(etag: str) -> Response | None:
    """A 304 answer if the request's ``If-None-Match`` holds ``etag`` (weak comparison,
    as RFC 9110 has it for GET; ``*`` matches anything that exists), else None."""
    wanted = request.if_none_match
    if wanted and (wanted.star_tag or wanted.contains_weak(etag.strip('"'))):
        return Response(status=304, headers={"ETag": etag})
    return None


class ListTag:
    """The ETag of one listing request, from ``stamp``, a SELECT of one number."""

    def __init__(self, stamp: Select, user):
        self.stamp = stamp
        self.user_key = f"{user.role}:{user.id}"
        self.value = None

    def read(self) -> None:
        if self.value is None:
            self.value = reads(db).execute(self.stamp).scalar_one()

    def not_modified(self) -> Response | None:
        """304 if the client's copy is current; only asks the database when the request
        is conditional."""
        if not request.if_none_match:
            return None
        self.read()
        return not_modified(self.etag)

    @property
    def etag(self) -> str:
        text = f"{self.value}|{self.user_key}|{request.url}"
        return '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'
