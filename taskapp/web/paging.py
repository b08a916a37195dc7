"""The two ways a listing pages, shared by the task and log listings.

- ``page=``: DRF's PageNumberPagination, ``{"count", "next", "previous", "results"}``.
- ``cursor=``: DRF's CursorPagination shape, ``{"next", "previous", "results"}``, paged by
  keyset over the full sort key (the ordering fields, then ``id``), so rows inserted or
  deleted meanwhile never shift a page: every row that exists throughout is shown once.
  A cursor is the position (the sort-key values of a page's last or first row), the
  direction and the ordering it was made for, signed with a key derived from
  ``JWT_SECRET_KEY`` (itsdangerous, salted): a cursor edited by hand, or reused with a
  different ordering, answers 400.
"""

from datetime import date, datetime
from functools import lru_cache
from urllib.parse import urlencode

import flask_smorest
from flask import abort, current_app, request
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Select, and_, false, func, literal, or_, true, tuple_

from taskapp.db import reads
from taskapp.extensions import db
from taskapp.web.conditional import ListTag
from taskapp.web.messages import INVALID_CURSOR, INVALID_PAGE

MAX_PAGE_SIZE = 100
CURSOR_SALT = "taskapp.cursor"


def entities(query: Select) -> list:
    """A page as ORM entities (the default)."""
    return db.session.execute(query).scalars().all()


def rows(query: Select) -> list:
    """A page as plain rows, read on :func:`taskapp.db.reads`'s connection: no ORM
    entity is built (for a select of columns)."""
    return reads(db).execute(query).all()


def paginate(
    query: Select,
    page: int,
    page_size: int,
    *,
    options=(),
    count_query: Select | None = None,
    tag: ListTag | None = None,
    fetch=entities,
) -> dict:
    """Run ``query`` for one page: one count and one SELECT of at most 100 rows. The count
    is ``count_query`` when given (a cheaper exact count), else COUNT(*) over ``query``.
    A ``tag`` not read yet is read with the count, in the same statement. ``fetch``
    runs the page query (:func:`entities` or :func:`rows`)."""
    page_size = min(page_size, MAX_PAGE_SIZE)
    if count_query is None:
        count_query = query.with_only_columns(func.count(), maintain_column_froms=True)
        count_query = count_query.order_by(None)
    connection = reads(db)
    if tag is not None and tag.value is None:
        count, tag.value = connection.execute(_with_stamp(count_query, tag.stamp)).one()
    else:
        count = connection.execute(count_query).scalar_one()
    count = int(count)
    if page > 1 and (page - 1) * page_size >= count:
        abort(404, INVALID_PAGE)
    offset = (page - 1) * page_size
    if tag is not None:  # a listing built once (tasks): its page statement is kept too
        results = fetch(_page_of(query, tuple(options), page_size, offset))
    else:
        results = fetch(query.options(*options).limit(page_size).offset(offset))
    return {
        "count": count,
        "next": _page_url(page + 1) if page * page_size < count else None,
        "previous": _page_url(page - 1) if page > 1 else None,
        "results": results,
    }


@lru_cache(maxsize=256)
def _with_stamp(count_query: Select, stamp: Select) -> Select:
    """The count with the change stamp as a second column (one round trip for both),
    kept for a count and stamp built once (see tasks/queries.py ``listing``)."""
    return count_query.add_columns(stamp.scalar_subquery())


@lru_cache(maxsize=256)
def _page_of(query: Select, options: tuple, limit: int, offset: int) -> Select:
    return query.options(*options).limit(limit).offset(offset)


def _page_url(page: int) -> str:
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    if page > 1:
        args["page"] = [str(page)]
    return _url(args)


def _url(args: dict) -> str:
    query = urlencode(args, doseq=True)
    return f"{request.base_url}?{query}" if query else request.base_url


class Keyset:
    """The full sort key of a listing: ``keys`` (name, descending) then ``id``, in the
    direction of the last key, exactly as :func:`taskapp.web.ordering.order_by_keys`
    orders. Columns in ``nullable`` sort nulls last ascending and first descending.
    Every ordering is served, mixed directions and nulls included; a field named twice
    counts at its first mention (as in SQL, where the later mention orders nothing)."""

    def __init__(self, model, keys: list[tuple[str, bool]], nullable=()):
        keys = list({name: (name, desc) for name, desc in reversed(keys)}.values())[::-1]
        if "id" not in {name for name, _ in keys}:
            keys = [*keys, ("id", keys[-1][1] if keys else False)]
        self.model = model
        self.keys = keys
        self.nullable = set(nullable)
        self.spec = ",".join(("-" if desc else "") + name for name, desc in keys)

    def position(self, row) -> list:
        return [_to_json(getattr(row, name)) for name, _ in self.keys]

    def decode(self, values: list) -> list:
        if not isinstance(values, list) or len(values) != len(self.keys):
            raise ValueError("cursor does not fit the ordering")
        pairs = zip(self.keys, values, strict=True)
        return [_from_json(getattr(self.model, name), value) for (name, _), value in pairs]

    def order_by(self, query: Select, reverse: bool) -> Select:
        clauses = []
        for name, descending in self.keys:
            column = getattr(self.model, name)
            descending = descending != reverse
            clause = column.desc() if descending else column.asc()
            if name in self.nullable:
                clause = clause.nulls_first() if descending else clause.nulls_last()
            clauses.append(clause)
        return query.order_by(*clauses)

    def after(self, values: list, reverse: bool):
        """Rows strictly after ``values`` in this order (before it when ``reverse``)."""
        directions = [descending != reverse for _, descending in self.keys]
        columns = [getattr(self.model, name) for name, _ in self.keys]
        if not self.nullable & {name for name, _ in self.keys} and len(set(directions)) == 1:
            # One direction, no nulls: a row comparison, which an index range serves.
            row = tuple_(*columns)
            position = tuple_(*(literal(v, c.type) for c, v in zip(columns, values, strict=True)))
            return row < position if directions[0] else row > position
        alternatives = []
        for i, (name, _) in enumerate(self.keys):
            equal = [self._equal(columns[j], values[j]) for j in range(i)]
            nullable = name in self.nullable
            alternatives.append(
                and_(*equal, self._beyond(columns[i], values[i], directions[i], nullable))
            )
        bound = self._leading_bound(columns[0], values[0], directions[0])
        return and_(bound, or_(*alternatives))

    @staticmethod
    def _equal(column, value):
        return column.is_(None) if value is None else column == value

    @staticmethod
    def _beyond(column, value, descending: bool, nullable: bool):
        if value is None:  # nulls come last ascending, first descending
            return column.isnot(None) if descending else false()
        if descending:
            return column < value
        return or_(column > value, column.is_(None)) if nullable else column > value

    def _leading_bound(self, column, value, descending: bool):
        """A redundant bound on the first key that lets an index start at the position."""
        nullable = self.keys[0][0] in self.nullable
        if value is None:
            return true() if descending else column.is_(None)
        if descending:
            return column <= value
        return true() if nullable else column >= value


def cursor_paginate(
    query: Select,
    keyset: Keyset,
    cursor: str,
    page_size: int,
    *,
    tag: ListTag | None = None,
    fetch=entities,
) -> dict:
    """One page after (or before) ``cursor``; an empty cursor is the first page. One
    SELECT of page_size + 1 rows (the extra row says whether there is more), after the
    ``tag``'s stamp if it is not read yet."""
    page_size = min(page_size, MAX_PAGE_SIZE)
    if tag is not None:
        tag.read()
    position, reverse = _read_cursor(cursor, keyset) if cursor else (None, False)
    if position is not None:
        query = query.where(keyset.after(position, reverse))
    found = fetch(keyset.order_by(query, reverse).limit(page_size + 1))
    more = len(found) > page_size
    found = found[:page_size]
    if reverse:
        found.reverse()
    has_next = more if not reverse else True
    has_previous = more if reverse else position is not None
    return {
        "next": _cursor_url(keyset, found[-1], False) if has_next and found else None,
        "previous": _cursor_url(keyset, found[0], True) if has_previous and found else None,
        "results": found,
    }


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["JWT_SECRET_KEY"], salt=CURSOR_SALT)


def _read_cursor(cursor: str, keyset: Keyset) -> tuple[list, bool]:
    try:
        data = _serializer().loads(cursor)
        if not isinstance(data, dict) or data.get("o") != keyset.spec:
            raise ValueError("cursor made for another ordering")
        return keyset.decode(data["p"]), bool(data.get("r"))
    except (BadData, ValueError, KeyError, TypeError):
        flask_smorest.abort(400, messages={"query": {"cursor": [INVALID_CURSOR]}})


def _cursor_url(keyset: Keyset, row, reverse: bool) -> str:
    data = {"o": keyset.spec, "p": keyset.position(row)}
    if reverse:
        data["r"] = 1
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    args["cursor"] = [_serializer().dumps(data)]
    return _url(args)


def _to_json(value):
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    return value


def _from_json(column, value):
    if value is None:
        return None
    column_type = column.type
    python_type = getattr(column_type, "impl_instance", column_type).python_type
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is date:
        return date.fromisoformat(value)
    if isinstance(value, (dict, list, float)):
        raise ValueError("not a key value")
    return value
