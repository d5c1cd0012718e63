"""Text-to-speech with piper (ONNX VITS voices), the voice from a pinned wheel.

piper phonemizes with the espeak-ng data inside its own wheel and loads the voice from
the paths we give it; for English voices it never downloads anything (only its Chinese
phonemizer would, and no voice here uses it). It yields one audio chunk per sentence,
which we pass on as soon as each is ready so playback starts after the first sentence.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.conf import settings

from realtime.errors import TextToSpeechError
from realtime.providers import assets
from realtime.providers.base import TextToSpeech, iterate_in_thread

VOICES = ("joe",)


class PiperTTS(TextToSpeech):
    name = "piper"
    sample_rate = 22050

    def __init__(self, voice: str | None = None) -> None:
        self.default_voice: str = voice or settings.VOICE.get("PIPER_VOICE", "joe") or "joe"
        self._voices: dict[str, Any] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        self._voice(self.default_voice)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "voice": self.default_voice}

    def voices(self) -> tuple[str, ...]:
        return (self.default_voice, *(v for v in assets.PIPER_VOICES if v != self.default_voice))

    def _voice(self, name: str) -> Any:
        """The loaded ``PiperVoice`` for ``name`` ("" means the default), loaded once."""
        name = name or self.default_voice
        if name not in VOICES:
            raise TextToSpeechError(
                f"Unknown piper voice {name!r}; available voices: {', '.join(VOICES)}"
            )
        voice = self._voices.get(name)
        if voice is not None:
            return voice
        with self._lock:
            if name not in self._voices:
                from piper import PiperVoice  # heavy: import when loading only

                try:
                    model, config = assets.piper_voice_files(name)
                    loaded = PiperVoice.load(model, config_path=config)
                except Exception as err:
                    raise TextToSpeechError(f"Could not load piper voice {name!r}: {err}") from err
                self.sample_rate = loaded.config.sample_rate
                self._voices[name] = loaded
            return self._voices[name]

    def synthesize(self, text: str, *, voice: str = "", speed: float = 1.0) -> AsyncIterator[bytes]:
        loaded = self._voice(voice)  # unknown voice: fail before any thread starts
        if speed <= 0:
            raise TextToSpeechError(f"Speed must be positive, got {speed}")
        return iterate_in_thread(lambda stop: self._chunks(loaded, text, speed, stop))

    def synthesize_sync(self, text: str, *, voice: str = "", speed: float = 1.0) -> Iterator[bytes]:
        """Blocking variant, for worker threads and benchmarks."""
        return self._chunks(self._voice(voice), text, speed, threading.Event())

    def _chunks(
        self, loaded: Any, text: str, speed: float, stop: threading.Event
    ) -> Iterator[bytes]:
        from piper import SynthesisConfig

        if not text.strip():
            return
        # The voice's own pace times the requested speed-up.
        config = SynthesisConfig(length_scale=loaded.config.length_scale / speed)
        try:
            for chunk in loaded.synthesize(text, syn_config=config):
                if stop.is_set():
                    return
                yield chunk.audio_int16_bytes
        except Exception as err:
            raise TextToSpeechError(f"piper failed to speak {len(text)} characters") from err
