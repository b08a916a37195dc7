"""User administration: routes, schemas, queries (listing filters), service (the
rules, shared with the CLI)."""
