"""The HTTP fallback: one whole voice turn per request (PROTOCOL.md "HTTP fallback").

A REST turn takes the same road as a WebSocket turn, so history, quotas and stored
records cannot drift apart: ``services.session_open`` and ``services.turn_create`` (with
``transport=rest``), the utterance in the turn store, ``turn_run_task`` on the queue, and
the worker's events on a channel of the channel layer. Only the edge differs: the upload
is decoded in one piece, and the events are collected into one answer instead of being
forwarded as they arrive. The request is watched like a WebSocket turn (queue wait, stall)
and bounded in total, so it always ends with an answer or a ``{"code","message"}`` error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from conversations import services
from conversations.models import Turn
from realtime import loop as worker_loop
from realtime.audio import BYTES_PER_SECOND, decode_audio_file, make_output_encoder, wav_bytes
from realtime.pipeline import delivered_timings
from realtime.protocol import ProtocolError, SessionConfig
from realtime.providers.registry import warm_up_in_background
from realtime.store import get_turn_store
from voiceapp.errors import AppError, BadAudio, ErrorCode, TooLarge

logger = logging.getLogger(__name__)

#: REST answers carry a whole file: a WAV with a header plays anywhere, raw PCM does not.
DEFAULT_OUTPUT_FORMAT = "wav"
MIN_UTTERANCE_S = 0.2
#: How long a finished turn's task may take to return (eager mode: the worker thread).
TASK_SETTLE_S = 5.0
#: HTTP status of a turn that failed, by error code. The web process is a gateway to the
#: worker and its providers: their failures are 502, a worker that never answers 503, a
#: turn that runs out of time 504. An unexpected worker error (``internal``) is still the
#: upstream's failure as seen from here, hence 502, never a 500 from the view.
FAILED_TURN_STATUS: dict[str, int] = {
    ErrorCode.STT_FAILED: 502,
    ErrorCode.LLM_FAILED: 502,
    ErrorCode.TTS_FAILED: 502,
    ErrorCode.INTERNAL: 502,
    ErrorCode.BUSY: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.BAD_AUDIO: 400,
    ErrorCode.BAD_MESSAGE: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
}


class TurnFailed(AppError):
    """A turn that was stored but did not complete; the body names the turn."""

    def __init__(self, code: str, message: str, *, turn_id: int, session_id: int) -> None:
        try:
            error_code = ErrorCode(code)
        except ValueError:
            error_code = ErrorCode.INTERNAL
        super().__init__(message, code=error_code)
        self.http_status = FAILED_TURN_STATUS.get(self.code, 502)
        self.turn_id = turn_id
        self.session_id = session_id

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "turn_id": self.turn_id, "session_id": self.session_id}


@dataclass
class HttpTurnResult:
    """The ``201`` body; ``sample_rate`` and ``status`` extend PROTOCOL.md's fields."""

    session_id: int
    turn_id: int
    transcription: str
    response_text: str
    sources: list[dict[str, Any]]
    audio_base64: str
    audio_format: str
    sample_rate: int | None
    timings: dict[str, float | None]
    status: str = "completed"
    #: Non-fatal problems of the turn (``knowledge_unavailable``): ``{"code","message"}``.
    warnings: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "turn_id": self.turn_id,
            "transcription": self.transcription,
            "response_text": self.response_text,
            "sources": self.sources,
            "audio_base64": self.audio_base64,
            "audio_format": self.audio_format,
            "sample_rate": self.sample_rate,
            "status": self.status,
            "timings": self.timings,
            "warnings": self.warnings,
        }


@dataclass
class _Collected:
    """What arrived from the worker for one turn."""

    running: bool = False
    transcript: str = ""
    reply: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    pcm: bytearray = field(default_factory=bytearray)
    sample_rate: int | None = None
    first_audio_ms: float | None = None
    finished: dict[str, Any] | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


def _total_limit_s() -> float:
    """Longest a request may wait: a queued turn, then the worker's own time limit."""
    voice = settings.VOICE
    configured = voice.get("HTTP_TURN_TIMEOUT_S")
    if configured:
        return float(configured)
    return float(voice["QUEUE_WAIT_S"]) + float(settings.CELERY_TASK_SOFT_TIME_LIMIT)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


async def _decode(audio: bytes) -> bytes:
    """Upload → PCM16 16 kHz; the container is sniffed, the file name never trusted."""
    max_seconds = float(settings.VOICE["MAX_UTTERANCE_SECONDS"])
    pcm = await asyncio.to_thread(decode_audio_file, audio, max_seconds=max_seconds)
    if len(pcm) / BYTES_PER_SECOND < MIN_UTTERANCE_S:
        raise BadAudio(f"the audio is shorter than {MIN_UTTERANCE_S} s")
    return pcm


def _check_input(audio: bytes | None, text: str | None, config: SessionConfig) -> None:
    if (audio is None) == (not text):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "send either an audio file or a text, not both")
    if text and len(text) > settings.VOICE["MAX_TEXT_CHARS"]:
        raise TooLarge(f"text is longer than {settings.VOICE['MAX_TEXT_CHARS']} characters")
    if config.mode != "pipeline":
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "realtime mode is not enabled on this server")


async def http_turn_run(
    *,
    user: AbstractBaseUser,
    config: SessionConfig,
    audio: bytes | None = None,
    text: str | None = None,
    session_id: int | None = None,
    client_info: dict[str, Any] | None = None,
    received_at: float | None = None,
) -> HttpTurnResult:
    """Run one turn for a REST request and return the whole answer.

    ``received_at`` (``perf_counter``) is the request's commit: the upload is in the
    server. Raises ``AppError`` subclasses only: input errors before any turn exists,
    ``RateLimited`` / ``SessionNotFound`` from the services, ``TurnFailed`` after.
    """
    committed_at = time.perf_counter() if received_at is None else received_at
    _check_input(audio, text, config)
    pcm = await _decode(audio) if audio is not None else b""
    session, _resumed, _limits = await database_sync_to_async(services.session_open)(
        user=user,
        mode=config.mode,
        config=config.to_dict(),
        client_info=client_info or {},
        resume_id=session_id,
    )
    await database_sync_to_async(services.session_touch)(session_id=session.pk)
    turn = await database_sync_to_async(services.turn_create)(
        session_id=session.pk,
        user=user,
        input_kind=Turn.InputKind.VOICE if pcm else Turn.InputKind.TEXT,
        input_audio_seconds=len(pcm) / BYTES_PER_SECOND,
        transcript=text or "",
        transport=Turn.Transport.REST,
    )
    try:
        if pcm:
            await get_turn_store().put_utterance(turn.pk, pcm)
        runner = _TurnCollector(turn_id=turn.pk, session_id=session.pk, committed_at=committed_at)
        return await runner.run(config.output_format)
    finally:
        # A REST session is connected only while its request runs: closed, it stops
        # counting as concurrent; the next request resumes it with ``session_id``.
        await database_sync_to_async(services.session_close)(session_id=session.pk, reason="http")


class _TurnCollector:
    """Enqueues one turn and gathers its events until ``finished`` (or a watchdog)."""

    def __init__(self, *, turn_id: int, session_id: int, committed_at: float) -> None:
        self.turn_id = turn_id
        self.session_id = session_id
        self.committed_at = committed_at
        self.voice = settings.VOICE
        self.got = _Collected()

    async def run(self, output_format: str) -> HttpTurnResult:
        from realtime.tasks import turn_run_task

        if settings.EMBEDDED:
            # The eager task runs the pipeline on the registered loop: this one, which
            # owns the in-memory channel layer's queues we receive on.
            worker_loop.register_server_loop(asyncio.get_running_loop())
            warm_up_in_background()
        layer = get_channel_layer()
        channel = await layer.new_channel()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(layer, channel, inbox))
        # Eager on the embedded default, this call runs the whole turn: never on the loop,
        # and concurrently with the receiving below. It starts in an empty context: the
        # turn is the worker's, not this request's, and in the request's context its
        # database calls would queue behind the request's own thread, which is blocked
        # waiting for this very answer (asgiref's thread-sensitive executor).
        enqueue = asyncio.create_task(
            sync_to_async(turn_run_task.delay, thread_sensitive=False)(
                self.turn_id, channel, time.time()
            ),
            context=contextvars.Context(),
        )
        try:
            await self._collect(inbox, enqueue)
            result = await self._answer(output_format)
        except BaseException:
            pump.cancel()
            await self._settle(enqueue)
            raise
        pump.cancel()
        await self._settle(enqueue)
        return result

    @staticmethod
    async def _pump(layer: Any, channel: str, inbox: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            await inbox.put(await layer.receive(channel))

    @staticmethod
    async def _settle(enqueue: asyncio.Task[Any]) -> None:
        """Let an eager task's thread return before the request (and maybe its loop) ends."""
        with contextlib.suppress(BaseException):
            await asyncio.wait({enqueue}, timeout=TASK_SETTLE_S)

    async def _collect(
        self, inbox: asyncio.Queue[dict[str, Any]], enqueue: asyncio.Task[Any]
    ) -> None:
        started = last_event = time.monotonic()
        deadline = started + _total_limit_s()
        while self.got.finished is None:
            now = time.monotonic()
            failure = enqueue.done() and not enqueue.cancelled() and enqueue.exception()
            if failure:
                logger.error("could not enqueue turn %s", self.turn_id, exc_info=failure)
                await self._abandon(ErrorCode.BUSY, "the server could not queue this turn")
            if now >= deadline:
                await self._abandon(ErrorCode.TIMEOUT, "the answer took too long")
            if not self.got.running and now - started > self.voice["QUEUE_WAIT_S"]:
                await self._abandon(ErrorCode.BUSY, "no worker is free to answer; try again")
            if self.got.running and now - last_event > self.voice["TURN_STALL_S"]:
                await self._abandon(ErrorCode.TIMEOUT, "the answer stopped arriving")
            try:
                message = await asyncio.wait_for(inbox.get(), timeout=0.25)
            except TimeoutError:
                continue
            if message.get("turn_id") != self.turn_id:
                continue
            last_event = time.monotonic()
            self._take(message)

    def _take(self, message: dict[str, Any]) -> None:
        kind, data, got = message["kind"], message.get("data", {}), self.got
        if kind == "running":
            got.running = True
        elif kind == "transcript" and data.get("final", True):
            got.transcript = data.get("text", "")
        elif kind == "reply.done":
            got.reply = data.get("text", "")
            got.sources = list(data.get("sources") or [])
        elif kind == "audio":
            if got.first_audio_ms is None:
                got.first_audio_ms = _ms(self.committed_at)
            got.sample_rate = int(data["sample_rate"])
            got.pcm += message["audio"]
        elif kind == "error" and not data.get("fatal"):
            got.warnings.append({"code": data["code"], "message": data["message"]})
        elif kind == "finished":
            got.running = True
            got.finished = data

    async def _abandon(self, code: ErrorCode, message: str) -> None:
        """The worker never finished: stop it, store the turn failed, answer the error."""
        await get_turn_store().cancel(self.turn_id)
        await database_sync_to_async(services.turn_fail_if_unfinished)(
            turn_id=self.turn_id, code=str(code), message=message
        )
        await self._record(total_ms=_ms(self.committed_at))
        raise TurnFailed(code, message, turn_id=self.turn_id, session_id=self.session_id)

    async def _record(self, *, total_ms: float) -> None:
        got = self.got
        seconds = len(got.pcm) / 2 / got.sample_rate if got.sample_rate else 0.0
        await database_sync_to_async(services.turn_record_delivery)(
            turn_id=self.turn_id,
            first_audio_ms=got.first_audio_ms,
            total_ms=total_ms,
            output_audio_seconds=seconds,
        )

    async def _answer(self, output_format: str) -> HttpTurnResult:
        got = self.got
        finished = got.finished or {}
        error = finished.get("error")
        if finished.get("status") != Turn.Status.COMPLETED:
            await self._record(total_ms=_ms(self.committed_at))
            code = (error or {}).get("code", ErrorCode.INTERNAL)
            message = (error or {}).get("message", "the turn did not complete")
            raise TurnFailed(code, message, turn_id=self.turn_id, session_id=self.session_id)
        audio, sample_rate = b"", got.sample_rate
        if got.sample_rate:
            audio, sample_rate = await asyncio.to_thread(
                _encode, bytes(got.pcm), got.sample_rate, output_format
            )
        worker = finished.get("timings", {})
        timings = delivered_timings(
            worker, first_audio_ms=got.first_audio_ms, total_ms=_ms(self.committed_at)
        )
        await self._record(total_ms=timings["total_ms"])  # type: ignore[arg-type]
        return HttpTurnResult(
            session_id=self.session_id,
            turn_id=self.turn_id,
            transcription=got.transcript,
            response_text=got.reply,
            sources=got.sources,
            audio_base64=base64.b64encode(audio).decode("ascii"),
            audio_format=output_format,
            sample_rate=sample_rate,
            timings=timings,
            warnings=got.warnings,
        )


def _encode(pcm: bytes, rate: int, output_format: str) -> tuple[bytes, int]:
    """The whole reply in the client's format: a WAV gets its real sizes, not 0xFFFFFFFF."""
    if output_format == "wav":
        return wav_bytes(pcm, rate), rate
    encoder = make_output_encoder(output_format, rate)
    return encoder.encode(pcm) + encoder.flush(), encoder.sample_rate
