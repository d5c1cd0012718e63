"""WebSocket authentication: a SimpleJWT access token, never a cookie.

Because a WebSocket is authenticated by a token the page must hold, a forged cross-site
connection carries no credentials; the origin check in ``asgi.py`` is defence in depth.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken


def user_from_token(token: str) -> AbstractBaseUser | None:
    """The active user an access token belongs to, or ``None`` for any bad token."""
    try:
        access = AccessToken(token)  # type: ignore[arg-type]
    except TokenError:
        return None
    user_id = access.get(api_settings.USER_ID_CLAIM)
    if user_id is None:
        return None
    user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
    if user is None or not user.is_active:
        return None
    return user
