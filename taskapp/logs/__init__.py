"""The activity log, read-only: routes and schemas (the web side), queries (listing
filters and lookups)."""

from taskapp.features import Feature

FEATURE = Feature("logs")
