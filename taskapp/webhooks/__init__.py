"""Webhooks: a user's receiver URLs, their secrets, deliveries and redelivery. Routes
and schemas (the web side); models, service, queries, outbox (relay), delivery, targets
(SSRF guard), signing (the domain); jobs.py (the tick, deliveries, the commit nudge) and
cli.py (``flask webhooks ...``), thin adapters."""

from taskapp.features import Feature

FEATURE = Feature("webhooks", models=True, cli=True, jobs=True, listeners="jobs")
