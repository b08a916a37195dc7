"""ORDER BY from parsed ``ordering`` keys, shared by the task and log listings."""

from sqlalchemy import Select


def order_by_keys(query: Select, model, keys: list[tuple[str, bool]], nullable=()) -> Select:
    """Order by ``keys``, then by id in the direction of the last key, so that the order
    is total (pages never repeat or skip) and a composite index ending in ``id`` serves
    it. Columns in ``nullable`` put nulls last ascending and first descending, the same
    on SQLite (whose default is the reverse) and PostgreSQL."""
    clauses = []
    for name, descending in keys:
        column = getattr(model, name)
        clause = column.desc() if descending else column.asc()
        if name in nullable:
            clause = clause.nulls_first() if descending else clause.nulls_last()
        clauses.append(clause)
    if "id" not in {name for name, _ in keys}:
        clauses.append(model.id.desc() if keys and keys[-1][1] else model.id.asc())
    return query.order_by(*clauses)
