"""Role checks that read the verified JWT's ``role`` claim.

The claim can be trusted as current: changing a user's role bumps their token version,
which makes every token minted before the change fail verification (auth/tokens.py).
"""

from functools import wraps

from flask import abort
from flask_jwt_extended import get_jwt, verify_jwt_in_request

from taskapp.web.messages import PERMISSION_DENIED


def current_role() -> str:
    return get_jwt()["role"]


def roles_required(*roles: str):
    """Require a valid access token; with ``roles``, require one of them (else 403)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request()
            if roles and current_role() not in roles:
                abort(403, PERMISSION_DENIED)
            return view(*args, **kwargs)

        return wrapper

    return decorator
