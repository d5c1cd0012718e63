"""Reads that shape data for the consumer, the worker and the API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, QuerySet

from conversations.models import RateLimitPolicy, Turn, VoicePreferences, VoiceSession
from voiceapp.errors import SessionNotFound


@dataclass(frozen=True)
class Limits:
    sessions_per_hour: int
    max_session_seconds: int
    idle_timeout_seconds: int
    turns_per_day: int
    audio_minutes_per_day: int
    max_concurrent_sessions: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def limits_for_user(*, user: AbstractBaseUser) -> Limits:
    """The user's own policy, else the stored default, else the settings' defaults."""
    policy = (
        RateLimitPolicy.objects.filter(user=user).first()
        or RateLimitPolicy.objects.filter(user__isnull=True).first()
    )
    if policy is None:
        return Limits(**settings.RATE_LIMIT_DEFAULTS)
    # Every limit is a policy column of the same name: a new quota cannot be forgotten here.
    return Limits(**{limit.name: getattr(policy, limit.name) for limit in fields(Limits)})


def history_messages(*, session_id: int, before_index: int, limit: int) -> list[dict[str, str]]:
    """The last ``limit`` exchanges as chat messages, holding only what the user heard.

    Failed turns and turns whose words moved into the next turn (the user went on
    speaking) are left out; an interrupted reply contributes only the part that was
    played before the interruption.
    """
    session = VoiceSession.objects.only("history_start_index").get(pk=session_id)
    turns = list(
        Turn.objects.filter(
            session_id=session_id,
            index__lt=before_index,
            index__gte=session.history_start_index,
            status__in=[Turn.Status.COMPLETED, Turn.Status.CANCELLED],
        )
        .exclude(transcript="")
        .exclude(continued=True)
        .order_by("-index")[:limit]
    )
    messages: list[dict[str, str]] = []
    for turn in reversed(turns):
        messages.append({"role": "user", "content": turn.transcript})
        heard = turn.heard_text.strip()
        if heard:
            messages.append({"role": "assistant", "content": heard})
    return messages


def sessions_of_user(*, user: AbstractBaseUser) -> QuerySet[VoiceSession]:
    """The user's own sessions, newest first, each with ``turn_count`` (REST list)."""
    return (
        VoiceSession.objects.filter(user=user)
        .annotate(turn_count=Count("turns"))
        .order_by("-started_at", "-id")
    )


def session_of_user(*, user: AbstractBaseUser, session_id: int) -> VoiceSession:
    """One of the user's sessions with its turns; someone else's is ``SessionNotFound`` too."""
    session = (
        sessions_of_user(user=user)
        .prefetch_related(Prefetch("turns", queryset=Turn.objects.order_by("index")))
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise SessionNotFound(f"session {session_id} does not exist")
    return session


def preferences_of_user(*, user: AbstractBaseUser) -> dict[str, object]:
    """The user's voice page settings; the defaults until they save any."""
    preferences = VoicePreferences.objects.filter(user=user).first()
    return (preferences or VoicePreferences()).options()
