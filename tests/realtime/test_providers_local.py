"""The offline providers with their real models (loaded once for the module)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from realtime.errors import TextToSpeechError
from realtime.providers import registry
from realtime.providers.espeak_local import EspeakTTS
from realtime.providers.llama_local import LlamaLLM
from realtime.providers.piper_local import PiperTTS
from realtime.providers.whisper_local import WhisperSTT
from tests.helpers import DEV_AUDIO, read_wav_pcm16, reference_transcripts, word_error_rate

pytestmark = pytest.mark.models


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"a local model tried to use the network: {args!r}")


@pytest.fixture(scope="module")
def warmed() -> Iterator[dict[str, float]]:
    """All three local stages through the registry, warmed up with the network cut off."""
    local = {**settings.VOICE, "STT": "local", "LLM": "local", "TTS": "local"}
    with override_settings(VOICE=local), pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "getaddrinfo", _no_network)
        registry.reset_providers()
        timings = registry.warm_up()
        patch.undo()
        yield timings
        registry.reset_providers()


@pytest.fixture(scope="module")
def stt(warmed) -> WhisperSTT:
    provider = registry.get_provider("stt")
    assert isinstance(provider, WhisperSTT)
    return provider


@pytest.fixture(scope="module")
def llm(warmed) -> LlamaLLM:
    provider = registry.get_provider("llm")
    assert isinstance(provider, LlamaLLM)
    return provider


@pytest.fixture(scope="module")
def tts(warmed) -> PiperTTS:
    provider = registry.get_provider("tts")
    assert isinstance(provider, PiperTTS)
    return provider


def test_providers_describe_themselves(warmed):
    described = registry.providers_description()
    assert described["stt"] == {"name": "whisper", "model": "tiny.en", "compute_type": "int8"}
    assert described["llm"]["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert described["tts"] == {"name": "piper", "voice": "joe"}


# --- speech to text ---------------------------------------------------------------------
@pytest.mark.parametrize("utterance", ["jfk", "q01_piper"])
async def test_whisper_transcribes_within_word_error_budget(stt, utterance):
    audio, rate = read_wav_pcm16(DEV_AUDIO / f"{utterance}.wav")
    assert rate == 16000
    reference = reference_transcripts()[utterance.split("_")[0]]

    transcript = await stt.transcribe(audio)

    assert word_error_rate(reference, transcript.text) <= 0.15, transcript.text
    assert transcript.language == "en"


async def test_whisper_too_short_audio_is_an_empty_transcript(stt):
    transcript = await stt.transcribe(b"\x01\x00" * 800)  # 50 ms
    assert transcript.text == ""


# --- language model ---------------------------------------------------------------------
QUESTION = [
    {"role": "system", "content": "You are a helpful voice assistant. Answer briefly."},
    {"role": "user", "content": "What colour is the sky on a clear day?"},
]


async def test_llm_streams_tokens(llm):
    tokens = [token async for token in llm.stream_reply(QUESTION, max_tokens=24)]
    assert any(token.strip() for token in tokens)
    assert "<|im_end|>" not in "".join(tokens)


async def test_closing_the_llm_stream_stops_generation(llm, monkeypatch):
    produced = 0
    original = llm._llm.create_chat_completion

    def counting(*args: Any, **kwargs: Any) -> Iterator[Any]:
        nonlocal produced
        for chunk in original(*args, **kwargs):
            produced += 1
            yield chunk

    monkeypatch.setattr(llm._llm, "create_chat_completion", counting)
    story = [{"role": "user", "content": "Tell me a very long story about a dragon."}]
    stream = llm.stream_reply(story, max_tokens=300)
    for _ in range(3):
        await anext(stream)
    await stream.aclose()

    # The worker thread finishes the token in flight, then lets go of the model.
    acquired = await asyncio.to_thread(llm._run_lock.acquire, timeout=5)
    assert acquired
    llm._run_lock.release()
    stopped_at = produced
    await asyncio.sleep(0.3)
    assert produced == stopped_at < 20


# --- text to speech ---------------------------------------------------------------------
def seconds(chunks: list[bytes], rate: int) -> float:
    return sum(len(chunk) for chunk in chunks) / 2 / rate


async def test_piper_speaks_a_sentence(tts):
    chunks = [c async for c in tts.synthesize("The capital of Australia is Canberra.")]
    assert tts.sample_rate == 22050
    assert seconds(chunks, tts.sample_rate) >= 0.5
    assert all(len(chunk) % 2 == 0 for chunk in chunks)


async def test_piper_speed_shortens_audio(tts):
    text = "Chicken eggs hatch after about twenty one days."
    normal = [c async for c in tts.synthesize(text, speed=1.0)]
    fast = [c async for c in tts.synthesize(text, speed=2.0)]
    assert seconds(fast, tts.sample_rate) < 0.75 * seconds(normal, tts.sample_rate)


async def test_piper_yields_each_sentence_as_it_is_ready(tts):
    text = "First sentence here. Second sentence here. Third one."
    arrivals: list[float] = []
    started = time.perf_counter()
    async for _ in tts.synthesize(text):
        arrivals.append(time.perf_counter() - started)
    assert len(arrivals) == 3
    assert arrivals[0] < arrivals[-1]


async def test_piper_unknown_voice_is_a_tts_error(tts):
    with pytest.raises(TextToSpeechError, match="available voices: joe"):
        async for _ in tts.synthesize("Hello.", voice="amy"):
            pass


async def test_piper_stops_between_sentences_when_closed(tts):
    text = " ".join(f"This is sentence number {n}." for n in range(30))
    stream = tts.synthesize(text)
    await anext(stream)
    await stream.aclose()  # must return at once, not after thirty sentences


# --- espeak fallback ------------------------------------------------------------------
async def test_espeak_fallback_speaks_offline(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    espeak = EspeakTTS()
    chunks = [c async for c in espeak.synthesize("Hello there. How are you?")]
    assert len(chunks) == 2  # one per sentence
    assert espeak.sample_rate == 22050
    assert seconds(chunks, espeak.sample_rate) >= 0.5
    fast = [c async for c in espeak.synthesize("Hello there. How are you?", speed=2.0)]
    assert seconds(fast, 22050) < 0.75 * seconds(chunks, 22050)
    with pytest.raises(TextToSpeechError, match="voice"):
        async for _ in espeak.synthesize("Hi.", voice="no-such-voice"):
            pass


def test_models_load_once_per_instance(stt, llm, tts):
    models = (stt._model, llm._llm, tts._voice("joe"))
    threads = [threading.Thread(target=p.load) for p in (stt, llm, tts) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (stt._model, llm._llm, tts._voice("joe")) == models
