"""Audio retention and a user's right to deletion.

Retention is off unless ``AUDIO_RETENTION_DAYS`` is above 0: then the worker keeps no
copy of any audio and nothing here writes. When on, each turn's input and output audio
is stored as a WAV file under ``MEDIA_ROOT`` until ``expires_at``; ``audio_purge_expired``
(hourly Celery beat, or the ``purge_expired_audio`` command) deletes what has expired.

Files always leave with their rows, after commit (``conversations.signals``), whichever
path deletes them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from conversations.models import Turn, TurnAudio, VoiceSession
from realtime.audio import SAMPLE_WIDTH, wav_bytes

logger = logging.getLogger(__name__)

#: Keys of the counts ``user_data_delete`` and ``user_data_counts`` return.
COUNT_KEYS = ("sessions", "turns", "audio_files", "accounts")


def retention_enabled() -> bool:
    return retention_days() > 0


def retention_days() -> int:
    """Read at call time, so a changed setting applies from the next turn on."""
    return max(0, int(getattr(settings, "AUDIO_RETENTION_DAYS", 0) or 0))


@transaction.atomic
def turn_audio_store(*, turn_id: int, kind: str, pcm: bytes, sample_rate: int) -> TurnAudio | None:
    """Keep one side of a turn's audio as a WAV file; ``None`` when nothing was stored.

    Nothing is stored when retention is off, the audio is empty or the turn is gone. A
    second call for the same turn and kind returns the first recording unchanged (the
    worker runs a turn once; a retry must not make a second file).
    """
    days = retention_days()
    pcm = pcm[: len(pcm) // SAMPLE_WIDTH * SAMPLE_WIDTH]
    if days <= 0 or not pcm:
        return None
    turn = Turn.objects.filter(pk=turn_id).only("id", "session_id").first()
    if turn is None:
        return None
    existing = TurnAudio.objects.filter(turn=turn, kind=kind).first()
    if existing is not None:
        return existing
    audio = TurnAudio(
        turn=turn,
        kind=kind,
        content_type="audio/wav",
        seconds=round(len(pcm) / SAMPLE_WIDTH / sample_rate, 3),
        expires_at=timezone.now() + timedelta(days=days),
    )
    audio.file.save("audio.wav", ContentFile(wav_bytes(pcm, sample_rate)), save=False)
    try:
        audio.save()
    except BaseException:
        # No row will point at the file: do not leave an unlisted recording behind.
        audio.file.storage.delete(audio.file.name)
        raise
    return audio


@transaction.atomic
def audio_purge_expired(*, now: datetime | None = None) -> int:
    """Delete every recording past its ``expires_at``; returns how many rows went."""
    deleted, _ = TurnAudio.objects.filter(expires_at__lte=now or timezone.now()).delete()
    if deleted:
        logger.info("purged %s expired audio recordings", deleted)
    return deleted


def user_data_counts(*, user: AbstractBaseUser) -> dict[str, int]:
    """What ``user_data_delete`` would delete, for a confirmation prompt."""
    return {
        "sessions": VoiceSession.objects.filter(user=user).count(),
        "turns": Turn.objects.filter(session__user=user).count(),
        "audio_files": TurnAudio.objects.filter(turn__session__user=user).count(),
        "accounts": 0,
    }


@transaction.atomic
def user_data_delete(
    *, user: AbstractBaseUser, audio_only: bool = False, delete_account: bool = False
) -> dict[str, int]:
    """Delete a user's conversations (sessions, turns) and all their audio files.

    ``audio_only`` keeps the sessions and transcripts; the account stays unless
    ``delete_account``. Returns the counts of what was deleted (``COUNT_KEYS``).
    """
    if audio_only:
        target = TurnAudio.objects.filter(turn__session__user=user)
    elif delete_account:
        target = get_user_model().objects.filter(pk=user.pk)
    else:
        target = VoiceSession.objects.filter(user=user)
    _, per_model = target.delete()
    counts = {
        "sessions": per_model.get(VoiceSession._meta.label, 0),
        "turns": per_model.get(Turn._meta.label, 0),
        "audio_files": per_model.get(TurnAudio._meta.label, 0),
        "accounts": per_model.get(get_user_model()._meta.label, 0),
    }
    logger.info("deleted the conversation data of user %s: %s", user.pk, counts)
    return counts
