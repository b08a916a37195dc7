"""The activity log, read-only: routes and schemas (the web side); models (the entry,
written by :mod:`taskapp.audit`), queries (listing filters and lookups)."""

from taskapp.features import Feature

FEATURE = Feature("logs", models=True)
