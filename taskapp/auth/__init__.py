"""Login, token refresh and logout, the caller's profile: routes, schemas, and
tokens.py (JWT issuing and the verification callbacks)."""
