"""Stage fakes: deterministic, fast stand-ins for STT, LLM and TTS in consumer tests.

Each fake reads its behaviour from ``FAKE`` (reset before every test by conftest), so a
test can make a stage slow, fail, or return a given text without touching settings.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from realtime.errors import LanguageModelError, SpeechToTextError, TextToSpeechError
from realtime.providers.base import LanguageModel, SpeechToText, TextToSpeech, Transcript


@dataclass
class FakeBehaviour:
    transcript: str = "what is the incubation temperature for chicken eggs"
    reply: str = "Keep the eggs at thirty seven and a half degrees. Turn them three times a day."
    token_delay_s: float = 0.0
    stt_delay_s: float = 0.0
    stt_error: bool = False
    llm_error_after: int | None = None
    #: An unexpected bug (not a provider error): the turn must fail as ``internal``.
    llm_crash: bool = False
    tts_error: bool = False
    tts_hang: bool = False
    #: Seconds of audio per word spoken (piper speaks ≈ 0.3 s a word).
    seconds_per_word: float = 0.3
    seen_messages: list[list[dict[str, str]]] = field(default_factory=list)
    seen_audio_bytes: list[int] = field(default_factory=list)
    cancelled_streams: int = 0


FAKE = FakeBehaviour()


def reset_fakes() -> None:
    global FAKE
    FAKE.__init__()  # type: ignore[misc]


class FakeSTT(SpeechToText):
    name = "fake-stt"

    async def transcribe(self, audio: bytes, *, language: str = "en") -> Transcript:
        FAKE.seen_audio_bytes.append(len(audio))
        if FAKE.stt_delay_s:
            await asyncio.sleep(FAKE.stt_delay_s)
        if FAKE.stt_error:
            raise SpeechToTextError("fake recogniser broke")
        return Transcript(FAKE.transcript, language)


class FakeLLM(LanguageModel):
    name = "fake-llm"

    async def stream_reply(
        self, messages: list[dict[str, str]], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        FAKE.seen_messages.append(messages)
        if FAKE.llm_crash:
            raise RuntimeError("a bug in the model wrapper")
        words = FAKE.reply.split(" ")
        try:
            for n, word in enumerate(words):
                if FAKE.llm_error_after is not None and n >= FAKE.llm_error_after:
                    raise LanguageModelError("fake model broke")
                if FAKE.token_delay_s:
                    await asyncio.sleep(FAKE.token_delay_s)
                yield word if n == 0 else " " + word
        except (GeneratorExit, asyncio.CancelledError):
            FAKE.cancelled_streams += 1
            raise


class FakeTTS(TextToSpeech):
    name = "fake-tts"
    sample_rate = 16000

    async def synthesize(
        self, text: str, *, voice: str = "", speed: float = 1.0
    ) -> AsyncIterator[bytes]:
        if FAKE.tts_error:
            raise TextToSpeechError("fake voice broke")
        if FAKE.tts_hang:
            await asyncio.sleep(3600)
        seconds = max(0.1, len(text.split()) * FAKE.seconds_per_word / speed)
        samples = int(self.sample_rate * seconds)
        tone = [
            int(8000 * math.sin(2 * math.pi * 220 * i / self.sample_rate)) for i in range(samples)
        ]
        yield struct.pack(f"<{samples}h", *tone)
