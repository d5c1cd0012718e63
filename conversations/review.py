"""Selectors for the staff conversation review page: one session, shaped for reading.

The shaping (what was heard versus generated, which recordings may still be played)
lives here so the view and template stay free of logic, and tests can check it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils import timezone

from conversations.models import Turn, TurnAudio, VoiceSession

#: (label, Turn field) of the compact timing row, in the order of the first-audio path.
TIMING_ROW = (
    ("STT", "stt_ms"),
    ("retrieval", "retrieval_ms"),
    ("LLM first token", "llm_first_token_ms"),
    ("LLM first clause", "llm_first_clause_ms"),
    ("TTS first audio", "tts_first_audio_ms"),
    ("first audio", "first_audio_ms"),
    ("total", "total_ms"),
)


@dataclass(frozen=True)
class TurnReview:
    turn: Turn
    #: The reply as the user heard it, and the generated rest they never heard.
    heard: str
    unheard: str
    timings: list[tuple[str, float | None]]
    sources: list[dict[str, Any]]
    #: Recordings still within their retention period, by kind ("input", "output").
    audio: dict[str, TurnAudio] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionReview:
    session: VoiceSession
    turns: list[TurnReview]


def reply_split(turn: Turn) -> tuple[str, str]:
    """``(heard, not heard)``: word-wise, since the heard text is rebuilt from clauses."""
    if not turn.interrupted:
        return turn.reply, ""
    words, heard = turn.reply.split(), turn.reply_heard.split()
    common = 0
    while common < min(len(words), len(heard)) and words[common] == heard[common]:
        common += 1
    return turn.reply_heard, " ".join(words[common:])


def _sources(turn: Turn) -> list[dict[str, Any]]:
    """Passages as stored (PROTOCOL.md ``reply.done``); anything malformed is skipped."""
    return [item for item in turn.sources or [] if isinstance(item, dict)]


def session_review_get(*, session_id: int) -> SessionReview:
    """The session and its turns in order, with playable recordings; 404 if missing."""
    playable = TurnAudio.objects.filter(expires_at__gt=timezone.now()).only(
        "id", "turn_id", "kind", "seconds", "content_type", "expires_at"
    )
    session = get_object_or_404(VoiceSession.objects.select_related("user"), pk=session_id)
    turns = (
        Turn.objects.filter(session=session)
        .order_by("index")
        .prefetch_related(Prefetch("audio", queryset=playable, to_attr="playable_audio"))
    )
    reviews = []
    for turn in turns:
        heard, unheard = reply_split(turn)
        reviews.append(
            TurnReview(
                turn=turn,
                heard=heard,
                unheard=unheard,
                timings=[(label, getattr(turn, name)) for label, name in TIMING_ROW],
                sources=_sources(turn),
                audio={audio.kind: audio for audio in turn.playable_audio},
            )
        )
    return SessionReview(session=session, turns=reviews)


def turn_audio_playable_get(*, audio_id: int) -> TurnAudio:
    """A recording still within its retention period, or 404 (expired ones are gone)."""
    return get_object_or_404(TurnAudio, pk=audio_id, expires_at__gt=timezone.now())
