"""Live changes: the sync feed (``GET /api/tasks/changes/``) and the event stream
(``GET /api/events/``), both read from the activity log in commit order (log.py). Routes
and schemas (the web side); models (commit positions, stream tickets), log, feed,
signed, stream, credentials, tickets, notify (the domain); cli.py (``flask events
tail``); serve it with deploy/stream.gunicorn.conf.py."""

from taskapp.features import Feature

FEATURE = Feature("events", models=True, cli=True, listeners="routes")
