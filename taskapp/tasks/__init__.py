"""Tasks: routes and schemas (the web side); models (the task and its shape: the fields,
defined once; the counters), service (the rules of a write), queries (filters,
ordering, counts, stats), recurrence, overdue, reminders, mail, calendar_feed (the
domain); jobs.py (sweeps, reminder mail) and cli.py (``flask tasks ...``, ``flask demo
seed``), thin adapters."""

from taskapp.features import Feature

FEATURE = Feature("tasks", models=True, cli=True, jobs=True)
