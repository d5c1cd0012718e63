"""Staff pages: the conversation review of one session, and its recordings.

Staff with the admin's view permission on sessions only. Recordings are streamed by
``turn_audio`` after that check, never from a public media URL: MEDIA_ROOT has no route.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from conversations.retention import retention_days
from conversations.review import session_review_get, turn_audio_playable_get

VIEW_PERMISSION = "conversations.view_voicesession"


def reviewer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Not staff: off to the admin login. Staff without the view permission: 403."""

    @staff_member_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@reviewer_required
def session_review(request: HttpRequest, session_id: int) -> HttpResponse:
    review = session_review_get(session_id=session_id)
    context = {
        **admin.site.each_context(request),
        "title": f"Conversation review: session {session_id}",
        "review": review,
        "session": review.session,
        "opts": review.session._meta,
        "retention_days": retention_days(),
    }
    return TemplateResponse(request, "admin/voiceapp/session_review.html", context)


@require_GET
@reviewer_required
def turn_audio(request: HttpRequest, audio_id: int) -> FileResponse:
    audio = turn_audio_playable_get(audio_id=audio_id)
    try:
        handle = audio.file.open("rb")
    except FileNotFoundError:
        raise Http404("the recording is gone") from None
    response = FileResponse(
        handle, content_type=audio.content_type, filename=f"turn-{audio.turn_id}-{audio.kind}.wav"
    )
    # A private recording: no shared cache may keep a copy.
    response["Cache-Control"] = "private, no-store"
    return response
