"""Fixtures for retention, review and deletion: a private MEDIA_ROOT and a recorded talk."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pytest

from conversations.models import Turn, TurnAudio, VoiceSession
from conversations.retention import turn_audio_store

SOURCES = [
    {
        "document_id": "doc-7",
        "title": "Incubation handbook",
        "chunk_id": "doc-7#3",
        "text": "Eggs incubate at 37.5 degrees with the humidity near fifty percent.",
        "score": 0.8734,
    }
]


def tone(seconds: float, rate: int = 16000) -> bytes:
    samples = int(seconds * rate)
    return struct.pack(
        f"<{samples}h",
        *(int(6000 * math.sin(2 * math.pi * 220 * i / rate)) for i in range(samples)),
    )


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Retained files go to a directory of this test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def retention_on(settings: Any, media_root: Path) -> Path:
    settings.AUDIO_RETENTION_DAYS = 7
    return media_root


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def conversation(user: Any, *, record: bool = False) -> VoiceSession:
    """A closed session of three turns: answered, interrupted, failed; one folded turn.

    With ``record`` (retention must be on) the first turn gets input and output audio.
    """
    session = VoiceSession.objects.create(
        user=user,
        status=VoiceSession.Status.CLOSED,
        end_reason="client",
        client_info={"user_agent": "pytest"},
    )
    Turn.objects.create(
        session=session,
        index=0,
        status=Turn.Status.COMPLETED,
        transcript="what temperature for chicken eggs",
        reply="Keep them at thirty seven and a half degrees.",
        sources=SOURCES,
        stt_ms=312.4,
        llm_first_token_ms=81.6,
        llm_first_clause_ms=140.2,
        llm_ms=540.2,
        tts_first_audio_ms=170.9,
        first_audio_ms=655.5,
        total_ms=1834.5,
    )
    Turn.objects.create(
        session=session,
        index=1,
        status=Turn.Status.CANCELLED,
        transcript="and how often do I turn",
        reply="Turn them three times a day, gently, by hand.",
        reply_heard="Turn them three",
        interrupted=True,
    )
    Turn.objects.create(
        session=session,
        index=2,
        status=Turn.Status.CANCELLED,
        transcript="and also",
        interrupted=True,
        continued=True,
    )
    Turn.objects.create(
        session=session,
        index=3,
        status=Turn.Status.FAILED,
        transcript="",
        error_code="bad_audio",
        error_message="no words were recognised in the audio",
    )
    if record:
        first = session.turns.get(index=0)
        turn_audio_store(
            turn_id=first.pk, kind=TurnAudio.Kind.INPUT, pcm=tone(1.0), sample_rate=16000
        )
        turn_audio_store(
            turn_id=first.pk,
            kind=TurnAudio.Kind.OUTPUT,
            pcm=tone(2.0, 22050),
            sample_rate=22050,
        )
    return session
