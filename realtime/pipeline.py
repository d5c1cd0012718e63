"""One voice turn: STT → LLM token stream → clauses → TTS per clause → audio chunks.

Runs in the worker (``realtime.tasks``). Every event goes to the consumer's channel the
moment it exists; the consumer forwards it to the browser. The LLM and the TTS run
concurrently: the first clause is spoken while the model is still writing the next.
A watcher polls the cancel flag (barge-in) and cancels the whole turn at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

from conversations import services
from conversations.models import Turn
from conversations.selectors import history_messages
from realtime.clauses import ClauseSplitter
from realtime.errors import StageError, StageTimeout
from realtime.providers.base import LanguageModel, SpeechToText, TextToSpeech
from realtime.providers.registry import get_provider, providers_description
from realtime.store import TurnStore, get_turn_store
from voiceapp.errors import AppError, ErrorCode

logger = logging.getLogger(__name__)

CANCEL_POLL_S = 0.03
HEARTBEAT_S = 1.0
#: Stage timings the worker measures; the consumer adds first_audio_ms and total_ms.
WORKER_TIMINGS = (
    "stt_ms",
    "llm_first_token_ms",
    "llm_first_clause_ms",
    "llm_ms",
    "tts_first_audio_ms",
)
#: Internal message type on the channel layer; the consumer's handler is ``turn_event``.
TURN_EVENT = "turn.event"


class _Deadline:
    def __init__(self, timeout: asyncio.Timeout, seconds: float) -> None:
        self._timeout = timeout
        self._seconds = seconds

    def extend(self) -> None:
        """Progress was made: the stage gets a full time limit again from now."""
        self._timeout.reschedule(asyncio.get_running_loop().time() + self._seconds)


@contextlib.asynccontextmanager
async def stage_deadline(stage: str, seconds: float) -> AsyncIterator[_Deadline]:
    """Fail a stage that makes no progress for ``seconds`` with ``StageTimeout``."""
    try:
        async with asyncio.timeout(seconds) as timeout:
            yield _Deadline(timeout, seconds)
    except TimeoutError:
        raise StageTimeout(f"{stage} made no progress for {seconds:g} s") from None


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 1)


class EmptyReplyError(StageError):
    code = ErrorCode.LLM_FAILED
    stage = "llm"


class TurnSink:
    """Sends one turn's events to the consumer's channel, in order."""

    def __init__(self, channel: str, turn_id: int) -> None:
        self.channel = channel
        self.turn_id = turn_id
        self.layer = get_channel_layer()

    async def emit(self, kind: str, audio: bytes | None = None, **data: Any) -> None:
        message: dict[str, Any] = {
            "type": TURN_EVENT,
            "turn_id": self.turn_id,
            "kind": kind,
            "data": data,
        }
        if audio is not None:
            message["audio"] = audio
        for attempt in range(20):
            try:
                await self.layer.send(self.channel, message)
                return
            except ChannelFull:
                # The consumer is behind (slow client): wait a little, never drop audio.
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AppError("the client is not reading its events", code=ErrorCode.BUSY)


@dataclass
class TurnOutcome:
    status: str = Turn.Status.COMPLETED
    transcript: str = ""
    reply: str = ""
    error: AppError | None = None
    timings: dict[str, float] = field(default_factory=dict)
    output_audio_seconds: float = 0.0


class TurnRunner:
    """The stages of one turn. Raises ``StageError`` subclasses on provider failures."""

    def __init__(
        self,
        *,
        turn: Turn,
        sink: TurnSink,
        store: TurnStore,
        stt: SpeechToText,
        llm: LanguageModel,
        tts: TextToSpeech,
        outcome: TurnOutcome,
    ) -> None:
        self.turn = turn
        self.sink = sink
        self.store = store
        self.stt = stt
        self.llm = llm
        self.tts = tts
        self.outcome = outcome
        self.config: dict[str, Any] = dict(turn.session.config or {})
        self.voice_settings = settings.VOICE
        self.timeout_s = float(settings.VOICE["STAGE_TIMEOUT_S"])

    async def run(self) -> None:
        transcript = await self._transcribe()
        self.outcome.transcript = transcript
        if not transcript:
            raise AppError("no words were recognised in the audio", code=ErrorCode.BAD_AUDIO)
        messages = await self._messages(transcript)
        await self._reply(messages)

    async def _transcribe(self) -> str:
        if self.turn.input_kind == Turn.InputKind.TEXT:
            await self.sink.emit("transcript", text=self.turn.transcript, final=True)
            return self.turn.transcript
        audio = await self.store.take_utterance(self.turn.pk)
        if audio is None:
            raise AppError(
                "the recorded audio expired before it was processed", code=ErrorCode.BAD_AUDIO
            )
        await self.sink.emit("stage", stage="stt", state="started")
        start = time.perf_counter()
        async with stage_deadline("stt", self.timeout_s):
            result = await self.stt.transcribe(
                audio, language=self.config.get("input_language", "en")
            )
        self.outcome.timings["stt_ms"] = _ms(start)
        text = result.text.strip()
        await database_sync_to_async(services.turn_update)(
            turn_id=self.turn.pk, transcript=text, stt_ms=self.outcome.timings["stt_ms"]
        )
        await self.sink.emit("stage", stage="stt", state="done", ms=self.outcome.timings["stt_ms"])
        await self.sink.emit("transcript", text=text, final=True)
        return text

    async def _messages(self, transcript: str) -> list[dict[str, str]]:
        history = await database_sync_to_async(history_messages)(
            session_id=self.turn.session_id,
            before_index=self.turn.index,
            limit=self.voice_settings["HISTORY_TURNS"],
        )
        system = {"role": "system", "content": self.voice_settings["SYSTEM_PROMPT"]}
        return [system, *history, {"role": "user", "content": transcript}]

    async def _reply(self, messages: list[dict[str, str]]) -> None:
        clauses: asyncio.Queue[str | None] = asyncio.Queue()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._speak(clauses))
            await self._generate(messages, clauses)

    async def _generate(
        self, messages: list[dict[str, str]], clauses: asyncio.Queue[str | None]
    ) -> None:
        splitter = ClauseSplitter()
        parts: list[str] = []
        await self.sink.emit("stage", stage="llm", state="started")
        start = time.perf_counter()
        try:
            async with stage_deadline("llm", self.timeout_s) as deadline:
                async for token in self.llm.stream_reply(messages):
                    deadline.extend()
                    if not token:
                        continue
                    if not parts:
                        self.outcome.timings["llm_first_token_ms"] = _ms(start)
                    parts.append(token)
                    self.outcome.reply = "".join(parts)
                    await self.sink.emit("reply.delta", text=token)
                    for clause in splitter.feed(token):
                        self._first_clause(start)
                        await clauses.put(clause)
            rest = splitter.flush()
            if rest and rest.strip():
                self._first_clause(start)
                await clauses.put(rest)
        finally:
            await clauses.put(None)
        self.outcome.timings["llm_ms"] = _ms(start)
        self.outcome.reply = "".join(parts).strip()
        await self.sink.emit("stage", stage="llm", state="done", ms=self.outcome.timings["llm_ms"])
        if not self.outcome.reply:
            raise EmptyReplyError("the language model returned an empty reply")
        await self.sink.emit("reply.done", text=self.outcome.reply, sources=[])

    def _first_clause(self, llm_start: float) -> None:
        self.outcome.timings.setdefault("llm_first_clause_ms", _ms(llm_start))

    async def _speak(self, clauses: asyncio.Queue[str | None]) -> None:
        rate = self.tts.sample_rate
        chunk_bytes = max(2, int(rate * self.voice_settings["AUDIO_CHUNK_MS"] / 1000)) * 2
        voice = self.config.get("voice", "")
        speed = float(self.config.get("speed", 1.0))
        offset_ms = 0.0
        index = 0
        started = False
        tts_start = 0.0
        while (clause := await clauses.get()) is not None:
            clause_start = time.perf_counter()
            if not started:
                await self.sink.emit("stage", stage="tts", state="started")
                tts_start = clause_start
            pending = b""
            clause_offset = offset_ms
            async with stage_deadline("tts", self.timeout_s) as deadline:
                async for pcm in self.tts.synthesize(clause, voice=voice, speed=speed):
                    deadline.extend()
                    pending += pcm
                    while len(pending) >= chunk_bytes:
                        chunk, pending = pending[:chunk_bytes], pending[chunk_bytes:]
                        offset_ms = await self._send_audio(
                            chunk, rate, index, clause, clause_offset, offset_ms
                        )
                        if not started:
                            started = True
                            self.outcome.timings["tts_first_audio_ms"] = _ms(clause_start)
            if len(pending) % 2:
                pending = pending[:-1]
            if pending:
                offset_ms = await self._send_audio(
                    pending, rate, index, clause, clause_offset, offset_ms
                )
                if not started:
                    started = True
                    self.outcome.timings["tts_first_audio_ms"] = _ms(clause_start)
            index += 1
        self.outcome.output_audio_seconds = offset_ms / 1000.0
        if started:
            await self.sink.emit("stage", stage="tts", state="done", ms=_ms(tts_start))

    async def _send_audio(
        self,
        chunk: bytes,
        rate: int,
        index: int,
        clause: str,
        clause_offset: float,
        offset_ms: float,
    ) -> float:
        duration_ms = len(chunk) / 2 / rate * 1000.0
        await self.sink.emit(
            "audio",
            audio=chunk,
            sample_rate=rate,
            clause_index=index,
            clause_text=clause,
            clause_offset_ms=round(clause_offset, 1),
            offset_ms=round(offset_ms, 1),
            duration_ms=round(duration_ms, 1),
        )
        return offset_ms + duration_ms


def _as_app_error(turn_id: int, err: BaseException) -> AppError:
    """The error the client sees: the first real cause inside task groups, else internal."""
    while isinstance(err, BaseExceptionGroup):
        err = err.exceptions[0]
    if isinstance(err, AppError):
        return err
    logger.error("turn %s failed unexpectedly", turn_id, exc_info=err)
    return AppError("the server could not finish this turn", code=ErrorCode.INTERNAL)


async def turn_run(*, turn_id: int, reply_channel: str) -> TurnOutcome | None:
    """Run one queued turn to its end and store it. ``None`` if it was not queued."""
    stages = {stage: get_provider(stage) for stage in ("stt", "llm", "tts")}
    turn = await database_sync_to_async(services.turn_start)(
        turn_id=turn_id, providers=providers_description()
    )
    if turn is None:
        logger.info("turn %s is not queued any more; nothing to do", turn_id)
        return None
    sink = TurnSink(reply_channel, turn_id)
    store = get_turn_store()
    outcome = TurnOutcome(transcript=turn.transcript)
    runner = TurnRunner(turn=turn, sink=sink, store=store, outcome=outcome, **stages)  # type: ignore[arg-type]
    await sink.emit("running")

    work = asyncio.create_task(runner.run())
    watcher = asyncio.create_task(_watch_cancel(store, sink, turn_id, work))
    try:
        await work
    except asyncio.CancelledError:
        if not watcher.done() or watcher.result() is not True:
            outcome.status = Turn.Status.FAILED
            outcome.error = AppError("the turn ran out of time", code=ErrorCode.TIMEOUT)
            await _finish(turn_id, sink, outcome)
            raise
        outcome.status = Turn.Status.CANCELLED
    except Exception as err:  # noqa: BLE001 - every failure becomes a stored, failed turn
        outcome.status = Turn.Status.FAILED
        outcome.error = _as_app_error(turn_id, err)
    finally:
        watcher.cancel()
    await _finish(turn_id, sink, outcome)
    return outcome


async def _watch_cancel(
    store: TurnStore, sink: TurnSink, turn_id: int, work: asyncio.Task[None]
) -> bool:
    """Cancel ``work`` when the consumer sets the cancel flag; send a heartbeat meanwhile.

    The heartbeat lets the consumer tell a slow stage from a dead worker.
    """
    last_beat = time.monotonic()
    while not work.done():
        if await store.is_cancelled(turn_id):
            work.cancel()
            return True
        if time.monotonic() - last_beat >= HEARTBEAT_S:
            last_beat = time.monotonic()
            await sink.emit("alive")
        await asyncio.sleep(CANCEL_POLL_S)
    return False


async def _finish(turn_id: int, sink: TurnSink, outcome: TurnOutcome) -> None:
    error = outcome.error
    if error is not None:
        level = logging.INFO if error.code == ErrorCode.BAD_AUDIO else logging.WARNING
        logger.log(level, "turn %s failed: %s %s", turn_id, error.code, error.message)
    await database_sync_to_async(services.turn_finish)(
        turn_id=turn_id,
        status=outcome.status,
        transcript=outcome.transcript or None,
        reply=outcome.reply or None,
        error_code=str(error.code) if error else None,
        error_message=error.message if error else None,
        output_audio_seconds=outcome.output_audio_seconds,
        **{
            name: outcome.timings.get(name)
            for name in ("stt_ms", "llm_first_token_ms", "llm_ms", "tts_first_audio_ms")
        },
    )
    data: dict[str, Any] = {"status": str(outcome.status), "timings": outcome.timings}
    if error is not None:
        data["error"] = error.to_dict()
    try:
        await sink.emit("finished", output_audio_seconds=outcome.output_audio_seconds, **data)
    except AppError:
        logger.warning("turn %s: the consumer is gone; the turn is stored", turn_id)
