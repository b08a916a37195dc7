"""Filters and ordering for the user listing, built from parsed query args."""

from sqlalchemy import Select, func, or_, select

from taskapp.ordering import order_by_keys
from taskapp.users.models import User


def filtered_users(args: dict) -> Select:
    query = select(User)
    if "role" in args:
        query = query.where(User.role == args["role"])
    if "is_active" in args:
        query = query.where(User.is_active == args["is_active"])
    if args.get("search"):
        term = args["search"].lower()
        query = query.where(
            or_(
                func.lower(User.username).contains(term, autoescape=True),
                func.lower(User.email).contains(term, autoescape=True),
            )
        )
    return order_by_keys(query, User, [("id", False)])
