"""Writes: opening and closing sessions, and moving turns through their status machine.

Plain functions with keyword-only arguments, called from the consumer (through
``database_sync_to_async``), the Celery worker and the REST views alike.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from conversations.models import Turn, VoicePreferences, VoiceSession
from conversations.ratelimits import quota_check_session_open, quota_check_turn
from conversations.selectors import Limits
from voiceapp.errors import BadRequest, SessionForbidden, SessionNotFound

logger = logging.getLogger(__name__)


@transaction.atomic
def session_open(
    *,
    user: AbstractBaseUser,
    mode: str,
    config: dict[str, Any],
    client_info: dict[str, Any],
    resume_id: int | None = None,
) -> tuple[VoiceSession, bool, Limits]:
    """Create a session or resume one of the user's own, within the user's quotas.

    Returns ``(session, resumed, limits)``. Someone else's session id raises
    ``SessionForbidden``; an unknown one ``SessionNotFound``; a full quota
    ``RateLimited``. Resuming counts against concurrent sessions but not against sessions
    per hour (``quota_check_session_open``). The quota check locks the user first, then
    the session row is locked: the same order as ``turn_create``, so they cannot deadlock.
    """
    if resume_id is not None:
        owner = VoiceSession.objects.filter(pk=resume_id).values_list("user_id", flat=True)
        owner_id = owner.first()
        if owner_id is None:
            raise SessionNotFound(f"session {resume_id} does not exist")
        if owner_id != user.pk:
            raise SessionForbidden(f"session {resume_id} does not exist")
    limits = quota_check_session_open(user=user, resume_id=resume_id)
    if resume_id is not None:
        session = VoiceSession.objects.select_for_update().get(pk=resume_id)
        session.status = VoiceSession.Status.ACTIVE
        session.ended_at = None
        session.end_reason = ""
        session.last_seen_at = timezone.now()
        session.mode = mode
        session.config = config
        session.client_info = client_info
        session.save(
            update_fields=[
                "status",
                "ended_at",
                "end_reason",
                "last_seen_at",
                "mode",
                "config",
                "client_info",
            ]
        )
        return session, True, limits

    session = VoiceSession.objects.create(
        user=user, mode=mode, config=config, client_info=client_info
    )
    return session, False, limits


def session_touch(*, session_id: int) -> None:
    """The session is still connected (it counts as concurrent while recently seen)."""
    VoiceSession.objects.filter(pk=session_id).update(last_seen_at=timezone.now())


def session_update_config(*, session_id: int, mode: str, config: dict[str, Any]) -> None:
    VoiceSession.objects.filter(pk=session_id).update(mode=mode, config=config)


@transaction.atomic
def session_close(*, session_id: int, reason: str) -> None:
    VoiceSession.objects.filter(pk=session_id, status=VoiceSession.Status.ACTIVE).update(
        status=VoiceSession.Status.CLOSED, ended_at=timezone.now(), end_reason=reason[:32]
    )


@transaction.atomic
def session_reset_history(*, session_id: int) -> None:
    """Forget the conversation so far: later turns get no history before this point."""
    session = VoiceSession.objects.select_for_update().get(pk=session_id)
    last = session.turns.aggregate(last=Max("index"))["last"]
    session.history_start_index = 0 if last is None else last + 1
    session.save(update_fields=["history_start_index"])


@transaction.atomic
def turn_create(
    *,
    session_id: int,
    user: AbstractBaseUser,
    input_kind: str,
    input_audio_seconds: float = 0.0,
    transcript: str = "",
    transport: str = Turn.Transport.WEBSOCKET,
) -> Turn:
    """Queue a new turn within the user's daily turn and audio quotas (both transports).

    The quota check locks the user before the session row is locked (see ``session_open``).
    """
    quota_check_turn(user=user, audio_seconds=input_audio_seconds)
    session = VoiceSession.objects.select_for_update().get(pk=session_id)
    last = session.turns.aggregate(last=Max("index"))["last"]
    return Turn.objects.create(
        session=session,
        index=0 if last is None else last + 1,
        input_kind=input_kind,
        input_audio_seconds=round(input_audio_seconds, 3),
        transcript=transcript,
        transport=transport,
    )


@transaction.atomic
def turn_start(*, turn_id: int, providers: dict[str, Any]) -> Turn | None:
    """Move a queued turn to running. ``None`` when it is not queued any more.

    This is what makes the Celery task idempotent: a redelivered or duplicate task finds
    the turn already running or finished and does nothing.
    """
    turn = Turn.objects.select_for_update().select_related("session").filter(pk=turn_id).first()
    if turn is None or turn.status != Turn.Status.QUEUED:
        return None
    turn.status = Turn.Status.RUNNING
    turn.providers = providers
    turn.save(update_fields=["status", "providers"])
    return turn


@transaction.atomic
def turn_finish(*, turn_id: int, status: str, **fields: Any) -> Turn:
    """Store a turn's outcome. The status moves only along the checked edges.

    When the turn already reached a final status (the consumer cancelled it, say), the
    status stays and only the other fields (reply, timings) are written, so nothing
    measured or generated is lost.
    """
    turn = Turn.objects.select_for_update().get(pk=turn_id)
    allowed = set(Turn.TIMING_FIELDS) | {
        "transcript",
        "reply",
        "reply_heard",
        "error_code",
        "error_message",
        "interrupted",
        "output_audio_seconds",
        "sources",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"turn_finish: unknown fields {sorted(unknown)}")
    for name, value in fields.items():
        if value is not None:
            setattr(turn, name, value)
    if Turn.can_transition(turn.status, status):
        turn.status = status
        turn.finished_at = timezone.now()
    elif turn.status != status and turn.status not in Turn.FINAL:
        raise ValueError(f"turn {turn_id}: {turn.status} -> {status} is not allowed")
    turn.save()
    return turn


def turn_update(*, turn_id: int, **fields: Any) -> None:
    """Write progress fields (transcript, a timing) without touching the status."""
    Turn.objects.filter(pk=turn_id).update(**fields)


@transaction.atomic
def turn_interrupt(
    *,
    turn_id: int,
    reply_heard: str,
    first_audio_ms: float | None,
    total_ms: float | None,
    output_audio_seconds: float,
    continued: bool = False,
) -> None:
    """The user cut the reply off (barge-in, cancel or disconnect): keep what was heard.

    ``continued``: the user went on speaking before any reply audio; the turn's audio
    moves into the next turn, so this one stays out of the conversation history.
    """
    turn = Turn.objects.select_for_update().get(pk=turn_id)
    turn.interrupted = True
    turn.continued = continued
    turn.reply_heard = reply_heard
    turn.output_audio_seconds = round(output_audio_seconds, 3)
    if first_audio_ms is not None:
        turn.first_audio_ms = first_audio_ms
    if total_ms is not None:
        turn.total_ms = total_ms
    if Turn.can_transition(turn.status, Turn.Status.CANCELLED):
        turn.status = Turn.Status.CANCELLED
        turn.finished_at = timezone.now()
    turn.save()


def turn_record_delivery(
    *, turn_id: int, first_audio_ms: float | None, total_ms: float, output_audio_seconds: float
) -> None:
    """Timings only the consumer can measure: when audio actually left for the client."""
    Turn.objects.filter(pk=turn_id).update(
        first_audio_ms=first_audio_ms,
        total_ms=total_ms,
        output_audio_seconds=round(output_audio_seconds, 3),
    )


def turn_fail_if_unfinished(*, turn_id: int, code: str, message: str) -> bool:
    """Fail a turn the worker never finished (lost worker, stall). True if it changed."""
    with transaction.atomic():
        turn = Turn.objects.select_for_update().filter(pk=turn_id).first()
        if turn is None or turn.status in Turn.FINAL:
            return False
        turn.status = Turn.Status.FAILED
        turn.error_code = code
        turn.error_message = message
        turn.finished_at = timezone.now()
        turn.save()
    logger.warning("turn %s failed: %s (%s)", turn_id, code, message)
    return True


@transaction.atomic
def preferences_update(*, user: AbstractBaseUser, changes: dict[str, Any]) -> VoicePreferences:
    """Save some of a user's voice page settings; the others keep their value.

    Values are checked exactly as the WebSocket checks session options, and against
    the voices and languages this server offers (``realtime.options``).
    """
    from realtime.options import options_validate

    unknown = sorted(set(changes) - set(VoicePreferences.OPTION_FIELDS))
    if unknown:
        raise BadRequest(f"unknown setting(s): {', '.join(unknown)}")
    clean = options_validate(changes)
    preferences, _ = VoicePreferences.objects.select_for_update().get_or_create(user=user)
    for name, value in clean.items():
        setattr(preferences, name, value)
    preferences.save()
    return preferences
