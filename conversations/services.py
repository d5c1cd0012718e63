"""Writes: opening and closing sessions, and moving turns through their status machine.

Plain functions with keyword-only arguments, called from the consumer (through
``database_sync_to_async``), the Celery worker and the REST views alike.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from conversations.models import Turn, VoiceSession
from conversations.selectors import (
    Limits,
    limits_for_user,
    sessions_started_since,
    turns_today_count,
)
from voiceapp.errors import RateLimited, SessionForbidden, SessionNotFound

logger = logging.getLogger(__name__)


def _lock_user(user: AbstractBaseUser) -> None:
    """Serialise quota checks of one user: two sessions opening at once wait in line."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk").first()


@transaction.atomic
def session_open(
    *,
    user: AbstractBaseUser,
    mode: str,
    config: dict[str, Any],
    client_info: dict[str, Any],
    resume_id: int | None = None,
) -> tuple[VoiceSession, bool, Limits]:
    """Create a session or resume one of the user's own; enforce the hourly session limit.

    Returns ``(session, resumed, limits)``. Someone else's session id raises
    ``SessionForbidden``; an unknown one ``SessionNotFound``.
    """
    limits = limits_for_user(user=user)
    if resume_id is not None:
        session = VoiceSession.objects.select_for_update().filter(pk=resume_id).first()
        if session is None:
            raise SessionNotFound(f"session {resume_id} does not exist")
        if session.user_id != user.pk:
            raise SessionForbidden(f"session {resume_id} does not exist")
        session.status = VoiceSession.Status.ACTIVE
        session.ended_at = None
        session.end_reason = ""
        session.mode = mode
        session.config = config
        session.client_info = client_info
        session.save(
            update_fields=["status", "ended_at", "end_reason", "mode", "config", "client_info"]
        )
        return session, True, limits

    _lock_user(user)
    recent = sessions_started_since(user=user, since=timedelta(hours=1))
    if len(recent) >= limits.sessions_per_hour:
        oldest = recent[0].started_at
        retry_after = (oldest + timedelta(hours=1) - timezone.now()).total_seconds()
        raise RateLimited(
            f"at most {limits.sessions_per_hour} sessions per hour",
            retry_after=int(retry_after) + 1,
        )
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
    """Queue a new turn, after checking the user's daily turn limit."""
    session = VoiceSession.objects.select_for_update().get(pk=session_id)
    limits = limits_for_user(user=user)
    if turns_today_count(user=user) >= limits.turns_per_day:
        now = timezone.now()
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        raise RateLimited(
            f"at most {limits.turns_per_day} turns per day",
            retry_after=int((tomorrow - now).total_seconds()) + 1,
        )
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
