"""Tasks: routes, schemas, queries (filters, ordering, counts, stats), service (the
rules of a write)."""
