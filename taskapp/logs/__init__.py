"""The activity log, read-only: routes, schemas, queries (listing filters)."""
