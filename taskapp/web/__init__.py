"""The HTTP plumbing, in one place: the smorest Api/Blueprint subclasses and the auth
decorator (api.py, permissions.py), error handlers and their messages (failures.py),
shared fields and base schemas (schemas.py), paging and ordering, the HTTP policy
(policy.py), the docs pages (docs.py) and the health check (health.py).

Resource packages (auth, users, tasks, logs) build on this; nothing here imports them.
"""
