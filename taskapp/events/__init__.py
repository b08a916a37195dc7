"""Live changes: the sync feed (``GET /api/tasks/changes/``) and the event stream
(``GET /api/events/``), both read from the activity log in commit order (log.py)."""
