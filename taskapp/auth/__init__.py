"""Login, token refresh and logout, the caller's profile, personal access tokens and
revocations: routes and schemas (the web side); tokens.py (JWT issuing and the
verification callbacks); models.py, personal_tokens.py, revocations.py, queries.py (the
domain); jobs.py (purges) and cli.py (``flask users tokens|revoke-token``), thin
adapters."""

from taskapp.features import Feature

FEATURE = Feature("auth", models=True, cli=True, jobs=True)
