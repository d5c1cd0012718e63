"""Per-user quotas: the stored default policy, the checks, and the usage staff see.

One definition of every window, shared by the checks and the admin's usage columns:

- **sessions per hour**: sessions started in the rolling hour before now. A resumed
  session is not a new one, so resuming never counts here.
- **concurrent sessions**: sessions still ``active`` whose connection was seen within
  ``SESSION_SEEN_WINDOW`` (connected WebSockets refresh ``last_seen_at`` every 30 s). A
  server that died without closing its sessions frees the user's slots after that long.
- **turns and audio minutes per day**: the calendar day in ``TIME_ZONE``, reset at
  midnight. That is what "per day" and the admin's "today" mean to staff and users, and it
  gives both daily quotas one exact ``retry_after``. A turn the user went on speaking over
  (``continued``) is not counted: its words and audio are in the next turn.

Atomicity: a check locks the user's row, then counts, inside the caller's transaction;
the caller inserts the session or turn in that same transaction. On PostgreSQL a second
request of the same user waits for the lock until the first has committed, and then
counts the first one's row. On SQLite ``select_for_update`` does nothing, but every
transaction begins ``IMMEDIATE`` (settings), which already lets one writer in at a time.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import (
    Count,
    F,
    Field,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations.models import RateLimitPolicy, Turn, VoiceSession
from conversations.selectors import Limits, limits_for_user
from voiceapp.errors import RateLimited

HOUR = timedelta(hours=1)
#: Three touch intervals: a session survives one late or lost touch before it stops
#: counting as connected.
SESSION_SEEN_WINDOW = timedelta(seconds=90)
#: Sums of stored, rounded floats: a turn that exactly fills the allowance still fits.
_EPSILON_S = 1e-6


@transaction.atomic
def ratelimit_default_ensure() -> RateLimitPolicy:
    """Return the default policy row, creating it from ``RATE_LIMIT_DEFAULTS`` if missing.

    An existing row is never overwritten: settings only seed it, and staff edit it in the
    admin afterwards.
    """
    policy, _created = RateLimitPolicy.objects.get_or_create(
        user=None, defaults=dict(settings.RATE_LIMIT_DEFAULTS)
    )
    return policy


# --- windows -----------------------------------------------------------------------------


def day_start(now: datetime) -> datetime:
    """Midnight that began today in ``TIME_ZONE``."""
    local = timezone.localtime(now)
    return datetime.combine(local.date(), time.min, tzinfo=local.tzinfo)


def seconds_until_tomorrow(now: datetime) -> float:
    local = timezone.localtime(now)
    midnight = datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=local.tzinfo)
    # Subtract in UTC: aware datetimes sharing a tzinfo subtract as wall-clock times.
    return (midnight.astimezone(UTC) - now).total_seconds()


def sessions_this_hour(*, user: Any, now: datetime) -> QuerySet[VoiceSession]:
    """``user``: a user, or ``OuterRef("user")`` in a subquery."""
    return VoiceSession.objects.filter(user=user, started_at__gt=now - HOUR)


def sessions_connected(*, user: Any, now: datetime) -> QuerySet[VoiceSession]:
    return VoiceSession.objects.filter(
        user=user,
        status=VoiceSession.Status.ACTIVE,
        last_seen_at__gt=now - SESSION_SEEN_WINDOW,
    )


def turns_today(*, user: Any, now: datetime) -> QuerySet[Turn]:
    return Turn.objects.filter(session__user=user, created_at__gte=day_start(now), continued=False)


def _scalar(queryset: QuerySet, function: str, field: str, output: Field) -> Coalesce:
    """``(SELECT COUNT|SUM(field) ...)`` as an annotation, 0 when nothing matches."""
    column = queryset.order_by().annotate(v=Func(F(field), function=function)).values("v")
    return Coalesce(Subquery(column, output_field=output), 0, output_field=output)


def usage_annotations(*, user: Any, now: datetime) -> dict[str, Coalesce]:
    """Current usage as subqueries for ``.annotate()``: a whole list in one query."""
    return {
        "used_sessions_hour": _scalar(
            sessions_this_hour(user=user, now=now), "COUNT", "pk", IntegerField()
        ),
        "used_sessions_connected": _scalar(
            sessions_connected(user=user, now=now), "COUNT", "pk", IntegerField()
        ),
        "used_turns_today": _scalar(turns_today(user=user, now=now), "COUNT", "pk", IntegerField()),
        "used_audio_seconds_today": _scalar(
            turns_today(user=user, now=now), "SUM", "input_audio_seconds", FloatField()
        ),
    }


def quota_usage(*, user: AbstractBaseUser) -> dict[str, dict[str, int | float]]:
    """Every quota of the user: ``{"used": ..., "limit": ...}`` (time limits: limit only)."""
    limits = limits_for_user(user=user)
    annotations = usage_annotations(user=OuterRef("pk"), now=timezone.now())
    rows = get_user_model().objects.filter(pk=user.pk).annotate(**annotations)
    used = rows.values(*annotations).get()
    return {
        "sessions_per_hour": {
            "used": used["used_sessions_hour"],
            "limit": limits.sessions_per_hour,
        },
        "max_concurrent_sessions": {
            "used": used["used_sessions_connected"],
            "limit": limits.max_concurrent_sessions,
        },
        "turns_per_day": {"used": used["used_turns_today"], "limit": limits.turns_per_day},
        "audio_minutes_per_day": {
            "used": round(used["used_audio_seconds_today"] / 60, 2),
            "limit": limits.audio_minutes_per_day,
        },
        "max_session_seconds": {"limit": limits.max_session_seconds},
        "idle_timeout_seconds": {"limit": limits.idle_timeout_seconds},
    }


# --- checks --------------------------------------------------------------------------------


def _lock_user(user: AbstractBaseUser) -> None:
    """Serialise the quota checks of one user until the caller's transaction ends."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("quota checks must run in the transaction that inserts the row")
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).values_list(
        "pk"
    ).first()


def _refuse_when_full(
    times: list[datetime], *, limit: int, window: timedelta, now: datetime, message: str
) -> None:
    """``times`` oldest first; each stops counting ``window`` after it.

    The count drops below the limit when the ``len - limit + 1`` oldest have left, so
    ``retry_after`` is when the ``len - limit``-th (0-based) leaves the window.
    """
    if len(times) < limit:
        return
    frees_at = times[len(times) - limit] + window if limit else now + window
    raise RateLimited(message, retry_after=math.ceil((frees_at - now).total_seconds()))


def quota_check_session_open(*, user: AbstractBaseUser, resume_id: int | None = None) -> Limits:
    """Sessions per hour and concurrent sessions, before a session opens or resumes.

    Resuming takes a concurrent slot (the resumed session is connected again) but is not
    a new session for the hourly limit: the user was counted when it first opened. The
    resumed session itself is left out of the concurrent count, so reconnecting after a
    dropped connection is not refused while its old connection still looks alive.
    Must run inside the transaction that then inserts or reactivates the session.
    """
    _lock_user(user)
    now = timezone.now()
    limits = limits_for_user(user=user)
    if resume_id is None:
        started = sessions_this_hour(user=user, now=now).order_by("started_at")
        _refuse_when_full(
            list(started.values_list("started_at", flat=True)),
            limit=limits.sessions_per_hour,
            window=HOUR,
            now=now,
            message=f"at most {limits.sessions_per_hour} sessions per hour",
        )
    connected = sessions_connected(user=user, now=now).order_by("last_seen_at")
    if resume_id is not None:
        connected = connected.exclude(pk=resume_id)
    _refuse_when_full(
        list(connected.values_list("last_seen_at", flat=True)),
        limit=limits.max_concurrent_sessions,
        window=SESSION_SEEN_WINDOW,
        now=now,
        message=f"at most {limits.max_concurrent_sessions} sessions at the same time",
    )
    return limits


def quota_check_turn(*, user: AbstractBaseUser, audio_seconds: float) -> Limits:
    """Turns per day and audio minutes per day, counting the new turn's audio.

    A text turn (no audio) is held only to the turn limit. Must run inside the
    transaction that then inserts the turn.
    """
    _lock_user(user)
    now = timezone.now()
    limits = limits_for_user(user=user)
    used = turns_today(user=user, now=now).aggregate(
        turns=Count("pk"), seconds=Coalesce(Sum("input_audio_seconds"), 0.0)
    )
    retry_after = math.ceil(seconds_until_tomorrow(now))
    if used["turns"] >= limits.turns_per_day:
        raise RateLimited(f"at most {limits.turns_per_day} turns per day", retry_after=retry_after)
    audio = round(audio_seconds, 3)
    if audio > 0 and used["seconds"] + audio > limits.audio_minutes_per_day * 60 + _EPSILON_S:
        raise RateLimited(
            f"at most {limits.audio_minutes_per_day} minutes of audio per day",
            retry_after=retry_after,
        )
    return limits
