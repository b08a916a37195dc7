"""DRF's PageNumberPagination: ``{"count", "next", "previous", "results"}``."""

from urllib.parse import urlencode

from flask import abort, request
from sqlalchemy import Select, func

from taskapp.extensions import db
from taskapp.web.messages import INVALID_PAGE

MAX_PAGE_SIZE = 100


def paginate(
    query: Select, page: int, page_size: int, *, options=(), count_query: Select | None = None
) -> dict:
    """Run ``query`` for one page: one count and one SELECT of at most 100 rows. The count
    is ``count_query`` when given (a cheaper exact count), else COUNT(*) over ``query``."""
    page_size = min(page_size, MAX_PAGE_SIZE)
    if count_query is None:
        count_query = query.with_only_columns(func.count(), maintain_column_froms=True)
        count_query = count_query.order_by(None)
    count = int(db.session.execute(count_query).scalar_one())
    if page > 1 and (page - 1) * page_size >= count:
        abort(404, INVALID_PAGE)
    page_query = query.options(*options).limit(page_size).offset((page - 1) * page_size)
    results = db.session.execute(page_query).scalars().all()
    return {
        "count": count,
        "next": _page_url(page + 1) if page * page_size < count else None,
        "previous": _page_url(page - 1) if page > 1 else None,
        "results": results,
    }


def _page_url(page: int) -> str:
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    if page > 1:
        args["page"] = [str(page)]
    query = urlencode(args, doseq=True)
    return f"{request.base_url}?{query}" if query else request.base_url
