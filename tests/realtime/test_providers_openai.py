"""Hosted providers against a local double of the OpenAI HTTP API (the real SDK runs)."""

from __future__ import annotations

import asyncio
import io
import logging
import wave
from collections.abc import Iterator

import openai
import pytest
from django.core.exceptions import ImproperlyConfigured

from realtime.errors import LanguageModelError, SpeechToTextError, StageTimeout, TextToSpeechError
from realtime.providers import registry
from realtime.providers.openai_api import (
    TTS_CHUNK_BYTES,
    OpenAILLM,
    OpenAISTT,
    OpenAITTS,
)
from tests.doubles.openai_server import API_KEY, Failure, OpenAIDouble, running_openai_double

ONE_SECOND = b"\x10\x00\xf0\xff" * 8000  # 16 kHz PCM16


@pytest.fixture
def double(settings) -> Iterator[OpenAIDouble]:
    with running_openai_double() as server:
        settings.VOICE = {
            **settings.VOICE,
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_TIMEOUT_S": 5.0,
            "OPENAI_STT_MODEL": "stt-model",
            "OPENAI_LLM_MODEL": "llm-model",
            "OPENAI_TTS_MODEL": "tts-model",
            "OPENAI_TTS_VOICE": "alloy",
        }
        yield server


@pytest.fixture(autouse=True)
def _capture_all_logs(caplog):
    caplog.set_level(logging.DEBUG)


def assert_key_not_leaked(caplog, *texts: str) -> None:
    assert API_KEY not in caplog.text
    for text in texts:
        assert API_KEY not in text


async def test_transcribe_uploads_wav_and_returns_text(double, caplog):
    provider = OpenAISTT()
    transcript = await provider.transcribe(ONE_SECOND, language="en")

    assert transcript.text == "hello from the double"
    [request] = double.requests_to("/v1/audio/transcriptions")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.form["model"] == "stt-model"
    assert request.form["language"] == "en"
    filename, data = request.files["file"]
    assert filename.endswith(".wav")
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.readframes(wav.getnframes()) == ONE_SECOND
    assert_key_not_leaked(caplog, repr(provider), str(provider.describe()))


async def test_transcribe_too_short_audio_sends_nothing(double):
    transcript = await OpenAISTT().transcribe(b"\x00\x00" * 100)
    assert transcript.text == ""
    assert double.requests == []


async def test_chat_streams_tokens_and_sends_messages(double):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
    ]
    tokens = [token async for token in OpenAILLM().stream_reply(messages, max_tokens=7)]

    assert tokens == double.reply_tokens
    [request] = double.requests_to("/v1/chat/completions")
    assert request.json is not None
    assert request.json["model"] == "llm-model"
    assert request.json["messages"] == messages
    assert request.json["stream"] is True
    assert request.json["max_tokens"] == 7


async def test_closing_the_chat_stream_hangs_up(double):
    double.reply_tokens = [f" word{i}" for i in range(200)]
    double.token_delay = 0.02
    stream = OpenAILLM().stream_reply([{"role": "user", "content": "Talk"}])
    received = [await anext(stream), await anext(stream)]
    await stream.aclose()

    assert received == [" word0", " word1"]
    # The server notices the closed connection on its next write.
    assert await asyncio.to_thread(double.stream_aborted.wait, 3.0)


async def test_speech_streams_bounded_pcm_chunks(double):
    provider = OpenAITTS()
    chunks = [chunk async for chunk in provider.synthesize("Hello there.", speed=1.25)]

    assert b"".join(chunks) == double.pcm
    assert all(len(chunk) <= TTS_CHUNK_BYTES for chunk in chunks)
    assert all(len(chunk) % 2 == 0 for chunk in chunks[:-1])
    assert provider.sample_rate == 24000
    [request] = double.requests_to("/v1/audio/speech")
    assert request.json == {
        "model": "tts-model",
        "voice": "alloy",
        "input": "Hello there.",
        "response_format": "pcm",
        "speed": 1.25,
    }


async def test_server_error_becomes_stage_error(double):
    double.failures["/v1/chat/completions"] = Failure(status=500)
    with pytest.raises(LanguageModelError) as caught:
        async for _ in OpenAILLM().stream_reply([{"role": "user", "content": "Hi"}]):
            pass

    assert caught.value.code == "llm_failed"
    assert "500" in caught.value.message
    assert isinstance(caught.value.__cause__, openai.InternalServerError)
    assert len(double.requests_to("/v1/chat/completions")) == 2  # max_retries=1


async def test_wrong_key_becomes_stage_error_without_leaking_it(double, settings, caplog):
    double.api_key = "sk-some-other-key"
    with pytest.raises(SpeechToTextError) as caught:
        await OpenAISTT().transcribe(ONE_SECOND)

    assert caught.value.code == "stt_failed"
    assert "401" in caught.value.message
    assert isinstance(caught.value.__cause__, openai.AuthenticationError)
    assert len(double.requests) == 1  # authentication errors are not retried
    assert_key_not_leaked(caplog, caught.value.message)


async def test_slow_server_becomes_stage_timeout(double, settings):
    settings.VOICE = {**settings.VOICE, "OPENAI_TIMEOUT_S": 0.2}
    double.failures["/v1/audio/speech"] = Failure(status=200, delay=1.5)
    with pytest.raises(StageTimeout) as caught:
        async for _ in OpenAITTS().synthesize("Hello."):
            pass

    assert caught.value.code == "timeout"
    assert isinstance(caught.value.__cause__, openai.APITimeoutError)


async def test_tts_server_error_is_tts_failed(double):
    double.failures["/v1/audio/speech"] = Failure(status=503)
    with pytest.raises(TextToSpeechError) as caught:
        async for _ in OpenAITTS().synthesize("Hello."):
            pass
    assert caught.value.code == "tts_failed"


def test_missing_key_is_a_clear_error(settings):
    settings.VOICE = {**settings.VOICE, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    with pytest.raises(LanguageModelError, match="OPENAI_API_KEY"):
        OpenAILLM().load()


# --- registry -------------------------------------------------------------------------
@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.reset_providers()
    yield
    registry.reset_providers()


def test_registry_builds_and_caches_configured_provider(double, settings, fresh_registry):
    settings.VOICE = {**settings.VOICE, "STT": "openai", "LLM": "openai", "TTS": "openai"}
    provider = registry.get_provider("llm")

    assert isinstance(provider, OpenAILLM)
    assert registry.get_provider("llm") is provider
    described = registry.providers_description()
    assert described["llm"] == {"name": "openai", "model": "llm-model", "base_url": double.base_url}
    assert described["tts"]["voice"] == "alloy"
    assert API_KEY not in str(described)
    assert registry.warm_up(("stt", "llm", "tts")).keys() == {"stt", "llm", "tts"}
    assert double.requests == []  # warming a hosted API costs nothing


def test_registry_rejects_unknown_backend(settings, fresh_registry):
    settings.VOICE = {**settings.VOICE, "TTS": "festival"}
    with pytest.raises(ImproperlyConfigured, match="local, espeak, openai"):
        registry.get_provider("tts")
    with pytest.raises(ImproperlyConfigured, match="stages"):
        registry.get_provider("vad")
