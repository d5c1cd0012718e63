"""Server VAD on the real dev recordings: one utterance in, one start and one stop out."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from realtime.audio import INPUT_RATE, read_wav
from realtime.vad import (
    WINDOW,
    SpeechEvent,
    SpeechSegmenter,
    SpeechStarted,
    SpeechStopped,
    VoiceActivityDetector,
    acquire_detector,
    release_detector,
)
from voiceapp.errors import BadAudio

DEV = Path("/work/shared/audio/dev")
QUESTIONS = sorted(p.name for p in DEV.glob("q*.wav"))
HANGOVER_MS = 400
PREROLL_MS = 300


def silence(ms: int) -> bytes:
    return bytes(ms * INPUT_RATE // 1000 * 2)


def load(name: str) -> bytes:
    pcm, rate = read_wav((DEV / name).read_bytes())
    assert rate == INPUT_RATE
    return pcm


def speech_bounds_ms(pcm: bytes, *, level: int = 300) -> tuple[float, float]:
    """First and last sample louder than ≈-40 dBFS: where the talker really starts/stops."""
    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)) > level)
    return loud[0] * 1000 / INPUT_RATE, (loud[-1] + 1) * 1000 / INPUT_RATE


def frames(pcm: bytes, frame_ms: int) -> Iterator[bytes]:
    step = frame_ms * INPUT_RATE // 1000 * 2
    for i in range(0, len(pcm), step):
        yield pcm[i : i + step]


def run(segmenter: SpeechSegmenter, pcm: bytes, frame_ms: int) -> list[SpeechEvent]:
    events: list[SpeechEvent] = []
    for frame in frames(pcm, frame_ms):
        events += segmenter.feed(frame)
    return events + segmenter.flush()


@pytest.fixture(scope="module")
def vad() -> VoiceActivityDetector:
    return VoiceActivityDetector()


@pytest.fixture
def segmenter(vad: VoiceActivityDetector) -> SpeechSegmenter:
    vad.reset()
    return SpeechSegmenter(vad, hangover_ms=HANGOVER_MS, preroll_ms=PREROLL_MS)


@pytest.mark.parametrize("frame_ms", [20, 100])
@pytest.mark.parametrize("name", QUESTIONS)
def test_one_utterance_gives_one_start_and_one_stop(
    segmenter: SpeechSegmenter, name: str, frame_ms: int
) -> None:
    pcm = load(name)
    start_ms, end_ms = speech_bounds_ms(pcm)
    events = run(segmenter, silence(1000) + pcm + silence(1000), frame_ms)

    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    started, stopped = events
    assert isinstance(started, SpeechStarted) and isinstance(stopped, SpeechStopped)
    assert abs(started.at_ms - (1000 + start_ms)) <= 100
    assert abs(stopped.at_ms - (1000 + end_ms) - HANGOVER_MS) <= 100
    # The audio runs from the pre-roll before the start to the stop.
    audio_ms = len(stopped.audio) * 1000 / (2 * INPUT_RATE)
    assert audio_ms == pytest.approx(stopped.at_ms - started.at_ms + PREROLL_MS, abs=1)
    assert not segmenter.speaking


def test_events_do_not_depend_on_frame_size(vad: VoiceActivityDetector) -> None:
    pcm = silence(700) + load("q07_piper.wav") + silence(900)
    results = []
    for frame_ms in (10, 20, 32, 100, 250, 1000):
        vad.reset()
        results.append(run(SpeechSegmenter(vad), pcm, frame_ms))
    assert all(r == results[0] for r in results)
    assert len(results[0]) == 2


def test_speaking_property_follows_the_events(segmenter: SpeechSegmenter) -> None:
    assert not segmenter.speaking
    seen_speaking = False
    for frame in frames(silence(500) + load("q03_piper.wav") + silence(800), 20):
        for event in segmenter.feed(frame):
            assert segmenter.speaking == isinstance(event, SpeechStarted)
        seen_speaking |= segmenter.speaking
    assert seen_speaking and not segmenter.speaking


def test_two_utterances_separated_by_silence(segmenter: SpeechSegmenter) -> None:
    first, second = load("q03_espeak.wav"), load("q05_piper.wav")
    pcm = silence(1000) + first + silence(1500) + second + silence(1000)
    events = run(segmenter, pcm, 20)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped] * 2
    second_start_ms = 1000 + len(first) / 32 + 1500 + speech_bounds_ms(second)[0]
    assert abs(events[2].at_ms - second_start_ms) <= 100


@pytest.mark.parametrize("noise_std", [0, 30, 300])
def test_silence_and_low_noise_give_nothing(segmenter: SpeechSegmenter, noise_std: int) -> None:
    rng = np.random.default_rng(noise_std)
    noise = np.clip(rng.normal(0, noise_std, 10 * INPUT_RATE), -32768, 32767)
    assert run(segmenter, noise.astype("<i2").tobytes(), 20) == []


def test_max_utterance_cuts_long_speech(vad: VoiceActivityDetector) -> None:
    segmenter = SpeechSegmenter(vad, max_utterance_s=1.0, preroll_ms=PREROLL_MS)
    events = run(segmenter, silence(500) + load("q07_espeak.wav") + silence(1000), 20)
    assert isinstance(events[0], SpeechStarted) and isinstance(events[1], SpeechStopped)
    assert events[1].at_ms - events[0].at_ms == pytest.approx(1000, abs=32)
    assert len(events[1].audio) <= (1000 + PREROLL_MS + 32) * 32
    # The talker goes on, so speech starts again right after the cut, and ends once.
    assert isinstance(events[2], SpeechStarted)
    assert isinstance(events[-1], SpeechStopped)
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    assert all(len(e.audio) <= (1000 + PREROLL_MS + 32) * 32 for e in stops)


def test_force_end_returns_the_utterance_so_far(segmenter: SpeechSegmenter) -> None:
    assert segmenter.force_end() is None  # nobody spoke
    pcm = silence(500) + load("q01_piper.wav")[: INPUT_RATE * 2]  # cut mid-sentence
    events: list[SpeechEvent] = []
    for frame in frames(pcm, 20):
        events += segmenter.feed(frame)
    assert [type(e) for e in events] == [SpeechStarted]
    assert segmenter.speaking
    stopped = segmenter.force_end()
    assert isinstance(stopped, SpeechStopped)
    assert stopped.at_ms == segmenter.stream_ms == len(pcm) // 32
    assert len(stopped.audio) // 32 == stopped.at_ms - events[0].at_ms + PREROLL_MS
    assert not segmenter.speaking
    assert segmenter.force_end() is None


def test_flush_ends_speech_at_end_of_stream(segmenter: SpeechSegmenter) -> None:
    pcm = silence(300) + load("q04_piper.wav")[: INPUT_RATE * 2 + 100]
    events = run(segmenter, pcm, 20)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    assert events[1].at_ms == round(len(pcm) / 32)


def test_reset_drops_speech_but_keeps_the_clock(segmenter: SpeechSegmenter) -> None:
    pcm = silence(300) + load("q04_piper.wav")[:INPUT_RATE]
    for frame in frames(pcm, 20):
        segmenter.feed(frame)
    assert segmenter.speaking
    segmenter.reset()
    assert not segmenter.speaking
    assert segmenter.force_end() is None
    events = run(segmenter, silence(500) + load("q05_piper.wav") + silence(800), 20)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    assert events[0].at_ms > len(pcm) // 32 + 500 - 50  # stream time kept counting


def test_preroll_memory_is_bounded_while_silent(segmenter: SpeechSegmenter) -> None:
    for frame in frames(silence(5000), 100):
        segmenter.feed(frame)
    assert len(segmenter._audio) <= (PREROLL_MS * 32) + WINDOW * 2


def test_odd_length_pcm_is_bad_audio(segmenter: SpeechSegmenter) -> None:
    with pytest.raises(BadAudio):
        segmenter.feed(b"\x00\x01\x02")


def test_invalid_threshold(vad: VoiceActivityDetector) -> None:
    with pytest.raises(ValueError):
        SpeechSegmenter(vad, threshold=1.5)


def test_detector_pool_reuses_models() -> None:
    vad = acquire_detector()
    release_detector(vad)
    assert acquire_detector() is vad


def test_per_frame_cost_is_microseconds(vad: VoiceActivityDetector) -> None:
    """Median cost of one 20 ms frame on the event loop (reported by ``-s``)."""
    segmenter = SpeechSegmenter(vad)
    pcm = silence(500) + load("q07_piper.wav") + silence(500)
    costs = []
    for _ in range(3):
        for frame in frames(pcm, 20):
            t0 = time.perf_counter()
            segmenter.feed(frame)
            costs.append(time.perf_counter() - t0)
    median_us, mean_us = statistics.median(costs) * 1e6, statistics.fmean(costs) * 1e6
    print(f"\nVAD cost per 20 ms frame: median {median_us:.0f} µs, mean {mean_us:.0f} µs")
    assert mean_us < 1000  # generous: a loaded 2-core CI box; ≈50-90 µs measured
