"""User administration: routes and schemas (the web side); models (the account),
service (the rules, shared with the CLI), queries (listing filters), passwords (argon2id
hashing); cli.py (``flask users ...``)."""

from taskapp.features import Feature

FEATURE = Feature("users", models=True, cli=True)
