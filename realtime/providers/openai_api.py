"""Hosted stages through the OpenAI API or any OpenAI-compatible server (base URL).

Only the async client is used, so no call blocks the event loop. One client per event
loop: an ``AsyncOpenAI`` keeps pooled connections that belong to the loop that opened
them, and a Celery worker may run each turn on a fresh loop. Errors become stage errors
(timeouts ``StageTimeout``) with the vendor's exception kept as ``__cause__``; the API
key never appears in a message, a log line or ``describe()``.
"""

from __future__ import annotations

import asyncio
import io
import wave
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, cast

import openai
from django.conf import settings
from openai.types.chat import ChatCompletionMessageParam

from realtime.errors import (
    LanguageModelError,
    SpeechToTextError,
    StageError,
    StageTimeout,
    TextToSpeechError,
)
from realtime.providers.base import (
    MULTILINGUAL,
    LanguageModel,
    SpeechToText,
    TextToSpeech,
    Transcript,
)

try:  # the transport under the SDK: mid-stream read errors are not wrapped by it
    import httpx2 as _http
except ImportError:  # pragma: no cover - older openai releases use httpx
    import httpx as _http  # type: ignore[no-redef]

STT_SAMPLE_RATE = 16_000
TTS_SAMPLE_RATE = 24_000  # response_format="pcm" is 24 kHz 16-bit mono
#: ~200 ms of 24 kHz PCM16 per chunk: small enough to start playback early, large
#: enough not to flood the channel layer.
TTS_CHUNK_BYTES = TTS_SAMPLE_RATE * 2 // 5
MIN_AUDIO_BYTES = STT_SAMPLE_RATE * 2 // 5  # 0.2 s, as for local Whisper


def pcm16_to_wav(audio: bytes, sample_rate: int = STT_SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(audio[: len(audio) - len(audio) % 2])
    return buffer.getvalue()


@contextmanager
def _vendor_errors(error: type[StageError], what: str) -> Iterator[None]:
    """Map SDK and transport errors onto the stage's error, keeping the cause."""
    try:
        yield
    except (openai.APITimeoutError, _http.TimeoutException, TimeoutError) as err:
        raise StageTimeout(f"{what} timed out") from err
    except openai.APIStatusError as err:
        raise error(f"{what} failed: HTTP {err.status_code} ({type(err).__name__})") from err
    except (openai.OpenAIError, _http.HTTPError) as err:
        raise error(f"{what} failed: {type(err).__name__}") from err


class _OpenAIProvider:
    """Settings and the per-loop client shared by the three stages."""

    name = "openai"
    model_key = ""
    error: type[StageError] = StageError

    def __init__(self) -> None:
        voice = settings.VOICE
        self.model: str = voice[self.model_key]
        self.base_url: str = voice.get("OPENAI_BASE_URL") or ""
        self.timeout: float = voice.get("OPENAI_TIMEOUT_S", 20.0)
        self._api_key: str = voice.get("OPENAI_API_KEY") or ""
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:  # never show the key
        return f"<{type(self).__name__} model={self.model!r} base_url={self.base_url!r}>"

    def load(self) -> None:
        if not self._api_key and not self.base_url:
            raise self.error("OPENAI_API_KEY is not set")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "base_url": self.base_url}

    def client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            self.load()
            client = openai.AsyncOpenAI(
                # A self-hosted server behind OPENAI_BASE_URL may need no key at all.
                api_key=self._api_key or "unused",
                base_url=self.base_url or None,
                timeout=self.timeout,
                max_retries=1,
            )
            self._clients[loop] = client
        return client


#: The built-in voices of OpenAI's speech endpoint.
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
)  # fmt: skip


class OpenAISTT(_OpenAIProvider, SpeechToText):
    model_key = "OPENAI_STT_MODEL"
    error = SpeechToTextError

    def languages(self) -> tuple[str, ...]:
        return MULTILINGUAL

    async def transcribe(self, audio: bytes, *, language: str = "en") -> Transcript:
        if len(audio) < MIN_AUDIO_BYTES:
            return Transcript(text="", language=language)
        with _vendor_errors(SpeechToTextError, "OpenAI transcription"):
            result = await self.client().audio.transcriptions.create(
                model=self.model,
                file=("utterance.wav", pcm16_to_wav(audio), "audio/wav"),
                language=language or openai.omit,
                response_format="json",
            )
        return Transcript(text=result.text.strip(), language=language)


class OpenAILLM(_OpenAIProvider, LanguageModel):
    model_key = "OPENAI_LLM_MODEL"
    error = LanguageModelError

    def __init__(self) -> None:
        super().__init__()
        self.max_tokens: int = settings.VOICE.get("LLM_MAX_TOKENS", 120)
        self.temperature: float = settings.VOICE.get("LLM_TEMPERATURE", 0.3)

    async def stream_reply(
        self, messages: list[dict[str, str]], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        with _vendor_errors(LanguageModelError, "OpenAI chat completion"):
            stream = await self.client().chat.completions.create(
                model=self.model,
                messages=cast(list[ChatCompletionMessageParam], messages),
                stream=True,
                # max_tokens, not max_completion_tokens: every compatible server knows it.
                max_tokens=max_tokens or self.max_tokens,
                temperature=self.temperature,
            )
        try:
            with _vendor_errors(LanguageModelError, "OpenAI chat completion"):
                async for chunk in stream:
                    if chunk.choices and (text := chunk.choices[0].delta.content):
                        yield text
        finally:
            await stream.close()  # on cancel too: stops the server generating


class OpenAITTS(_OpenAIProvider, TextToSpeech):
    model_key = "OPENAI_TTS_MODEL"
    error = TextToSpeechError
    sample_rate = TTS_SAMPLE_RATE

    def __init__(self) -> None:
        super().__init__()
        self.voice: str = settings.VOICE.get("OPENAI_TTS_VOICE", "alloy")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "voice": self.voice}

    def voices(self) -> tuple[str, ...]:
        return (self.voice, *(v for v in OPENAI_VOICES if v != self.voice))

    async def synthesize(
        self, text: str, *, voice: str = "", speed: float = 1.0
    ) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        with _vendor_errors(TextToSpeechError, "OpenAI speech"):
            async with self.client().audio.speech.with_streaming_response.create(
                model=self.model,
                voice=voice or self.voice,
                input=text,
                response_format="pcm",
                speed=speed,
            ) as response:
                async for chunk in response.iter_bytes(TTS_CHUNK_BYTES):
                    yield chunk
