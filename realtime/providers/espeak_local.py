"""Tiny text-to-speech fallback: espeak-ng through ctypes, library and data from a wheel.

Robotic, but a 10 MB wheel with no model to load, fast on any CPU, and no Python
binding to build: ``espeakng-loader`` ships ``libespeak-ng.so`` and its data, and we
call the C API directly. espeak-ng keeps global state, so one lock serialises all
synthesis in the process. Text is spoken a sentence at a time so the first sentence
can play while the next is synthesised, and a stop request aborts from the callback.
"""

from __future__ import annotations

import ctypes
import importlib.util
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from realtime.errors import TextToSpeechError
from realtime.providers.base import TextToSpeech, iterate_in_thread

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report data errors instead of calling exit()
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_DEFAULT_WPM = 175
#: English voices of espeak-ng offered on the voice page (any espeak-ng name also works).
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_loaded: tuple[Any, int] | None = None  # (library, sample rate)
_lib_lock = threading.Lock()  # espeak-ng is one global synthesiser per process


def _package_dir() -> Path:
    """``espeakng_loader`` located without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("espeakng_loader")
    if spec is None or not spec.submodule_search_locations:
        raise TextToSpeechError(
            "espeak fallback needs espeakng-loader: pip install espeakng-loader==0.2.4"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _library() -> tuple[Any, int]:
    """Load and initialise libespeak-ng once; returns (library, sample rate)."""
    global _loaded
    with _lib_lock:
        if _loaded is None:
            root = _package_dir()
            lib = ctypes.CDLL(str(root / "libespeak-ng.so"))
            lib.espeak_Initialize.argtypes = [
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
            ]
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
            lib.espeak_Synth.argtypes = [
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_uint,
                ctypes.c_uint,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            data = str(root / "espeak-ng-data").encode()
            rate = lib.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, 200, data, _INITIALIZE_DONT_EXIT
            )
            if rate <= 0:
                raise TextToSpeechError(f"espeak-ng failed to initialise (code {rate})")
            _loaded = (lib, rate)
        return _loaded


class EspeakTTS(TextToSpeech):
    name = "espeak-ng"
    sample_rate = 22050

    def __init__(self, voice: str = "en-us") -> None:
        self.default_voice = voice

    def load(self) -> None:
        _, self.sample_rate = _library()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "voice": self.default_voice}

    def voices(self) -> tuple[str, ...]:
        return (self.default_voice, *(v for v in ESPEAK_VOICES if v != self.default_voice))

    def synthesize(self, text: str, *, voice: str = "", speed: float = 1.0) -> AsyncIterator[bytes]:
        self.load()
        return iterate_in_thread(
            lambda stop: self.synthesize_sync(text, voice=voice, speed=speed, stop=stop)
        )

    def synthesize_sync(
        self,
        text: str,
        *,
        voice: str = "",
        speed: float = 1.0,
        stop: threading.Event | None = None,
    ) -> Iterator[bytes]:
        """Blocking: yields PCM16 for one sentence at a time."""
        stop = stop or threading.Event()
        for sentence in _SENTENCE_END.split(text.strip()):
            if stop.is_set():
                return
            if sentence:
                audio = self._speak(sentence, voice or self.default_voice, speed, stop)
                if audio:
                    yield audio

    def _speak(self, text: str, voice: str, speed: float, stop: threading.Event) -> bytes:
        lib, _ = _library()
        pieces: list[bytes] = []

        def collect(wav: Any, count: int, _events: Any) -> int:
            if wav and count > 0:
                pieces.append(ctypes.string_at(wav, count * 2))
            return 1 if stop.is_set() else 0  # non-zero aborts synthesis

        callback = _SynthCallback(collect)  # referenced until synthesis returns
        encoded = text.encode() + b"\0"
        wpm = max(80, min(450, round(_DEFAULT_WPM * speed)))
        with _lib_lock:
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise TextToSpeechError(f"Unknown espeak-ng voice {voice!r}")
            lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
            lib.espeak_SetSynthCallback(callback)
            status = lib.espeak_Synth(
                encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
        if status != 0 and not stop.is_set():
            raise TextToSpeechError(f"espeak-ng failed to speak (code {status})")
        return b"".join(pieces)
