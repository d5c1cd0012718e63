"""The voice page (PROTOCOL.md ``GET /voice/``): sign-in, the page, and its access token.

The page signs in with an ordinary Django login (a session cookie) and then asks
``voice_token`` for a short-lived JWT, which it sends as the WebSocket's first ``auth``
message and as the Bearer token of REST calls. The token never appears in a URL, so no
access log or proxy ever records it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from rest_framework_simplejwt.tokens import AccessToken

from conversations.selectors import preferences_of_user
from realtime.options import voice_options
from voiceapp.errors import ErrorCode


@never_cache
@login_required
def voice_page(request: HttpRequest) -> HttpResponse:
    voice = settings.VOICE
    page_config: dict[str, Any] = {
        "user": request.user.get_username(),
        "preferences": preferences_of_user(user=request.user),
        "options": voice_options(),
        "urls": {
            "websocket": "/ws/voice/",
            "worklet": static("voice/capture-worklet.js"),
            "token": reverse("voice_token"),
            "turns": reverse("api_voice_turns"),
            "preferences": reverse("api_voice_preferences"),
            "login": reverse("voice_login"),
        },
        "limits": {
            "max_utterance_seconds": voice["MAX_UTTERANCE_SECONDS"],
            "max_text_chars": voice["MAX_TEXT_CHARS"],
        },
    }
    return render(request, "voice/page.html", {"page_config": page_config})


@never_cache
@require_POST
def voice_token(request: HttpRequest) -> JsonResponse:
    """A fresh access token for the signed-in user (CSRF-checked like any form post)."""
    if not request.user.is_authenticated:
        return JsonResponse(
            {"code": str(ErrorCode.AUTH_FAILED), "message": "sign in first"}, status=401
        )
    lifetime: timedelta = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    return JsonResponse(
        {
            "access": str(AccessToken.for_user(request.user)),
            "expires_in": int(lifetime.total_seconds()),
        }
    )
