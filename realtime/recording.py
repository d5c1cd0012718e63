"""The worker's copy of a turn's audio, for review when audio retention is on.

``TurnRecorder.start`` returns ``None`` when retention is off, so the pipeline then holds
no copy of any audio. When on, it keeps the reply PCM exactly as sent to the client (for
an interrupted turn that is more than the user heard: the page shows the heard text
beside it) up to ``MAX_KEPT_SECONDS``, and stores both sides once the turn is stored,
in a database thread, never before the first audio.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async

from conversations.models import TurnAudio
from conversations.retention import retention_enabled, turn_audio_store
from realtime.audio import INPUT_RATE, SAMPLE_WIDTH

logger = logging.getLogger(__name__)

#: A bound on memory per turn: reply audio beyond this is sent but not kept.
MAX_KEPT_SECONDS = 600


class TurnRecorder:
    def __init__(self, *, utterance: bytes | None) -> None:
        self.utterance = utterance
        self.reply = bytearray()
        self.reply_rate = 0

    @classmethod
    def start(cls, *, utterance: bytes | None) -> TurnRecorder | None:
        return cls(utterance=utterance) if retention_enabled() else None

    def keep_reply(self, chunk: bytes, rate: int) -> None:
        """Append one sent chunk; the TTS voice has one rate for the whole turn."""
        self.reply_rate = self.reply_rate or rate
        room = MAX_KEPT_SECONDS * self.reply_rate * SAMPLE_WIDTH - len(self.reply)
        if room > 0:
            self.reply += chunk[:room]

    async def save(self, turn_id: int) -> None:
        """Store both sides. A failure is logged; the turn itself is already stored."""
        try:
            await database_sync_to_async(self._store)(turn_id)
        except Exception:
            logger.exception("turn %s: its audio could not be kept for review", turn_id)

    def _store(self, turn_id: int) -> None:
        if self.utterance:
            turn_audio_store(
                turn_id=turn_id,
                kind=TurnAudio.Kind.INPUT,
                pcm=self.utterance,
                sample_rate=INPUT_RATE,
            )
        if self.reply:
            turn_audio_store(
                turn_id=turn_id,
                kind=TurnAudio.Kind.OUTPUT,
                pcm=bytes(self.reply),
                sample_rate=self.reply_rate,
            )
