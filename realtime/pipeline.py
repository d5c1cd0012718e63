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
from knowledge.retrieval import knowledge_retrieve_async
from realtime.clauses import ClauseSplitter
from realtime.errors import StageError, StageTimeout
from realtime.grounding import grounded_system_prompt
from realtime.providers.base import LanguageModel, SpeechToText, TextToSpeech
from realtime.providers.registry import get_provider, providers_description
from realtime.recording import TurnRecorder
from realtime.store import TurnStore, get_turn_store
from voiceapp.errors import AppError, ErrorCode, KnowledgeUnavailable

logger = logging.getLogger(__name__)

CANCEL_POLL_S = 0.03
#: Beyond the knowledge base's own time limit: reading the database, a thread hop.
RETRIEVAL_SLACK_S = 0.5
HEARTBEAT_S = 1.0
#: Stage timings the worker measures; the consumer adds first_audio_ms and total_ms.
WORKER_TIMINGS = (
    "stt_ms",
    "retrieval_ms",
    "llm_first_token_ms",
    "llm_first_clause_ms",
    "llm_ms",
    "tts_first_audio_ms",
)
#: Worker diagnostics passed on to clients but not stored.
DIAGNOSTIC_TIMINGS = ("queue_ms", "setup_ms")


def delivered_timings(
    worker: dict[str, float], *, first_audio_ms: float | None, total_ms: float
) -> dict[str, float | None]:
    """``turn.done.timings``: the worker's stages plus what the receiving side measured.

    The WebSocket consumer and the HTTP fallback both answer with exactly this shape.
    """
    timings: dict[str, float | None] = {name: worker.get(name) for name in WORKER_TIMINGS}
    timings.update({name: worker[name] for name in DIAGNOSTIC_TIMINGS if name in worker})
    timings["first_audio_ms"] = first_audio_ms
    timings["total_ms"] = total_ms
    return timings


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
    #: The knowledge-base passages given to the LLM, as ``reply.done.sources`` items.
    sources: list[dict[str, Any]] = field(default_factory=list)
    output_audio_seconds: float = 0.0


class TurnRunner:
    """The stages of one turn. Raises ``StageError`` subclasses on provider failures."""

    def __init__(
        self,
        *,
        turn: Turn,
        sink: TurnSink,
        audio: bytes | None,
        picked_up: float,
        stt: SpeechToText,
        llm: LanguageModel,
        tts: TextToSpeech,
        outcome: TurnOutcome,
    ) -> None:
        self.turn = turn
        self.sink = sink
        #: The utterance of a voice turn, read from the turn store with the claim.
        self.audio = audio
        #: When the worker took the task (perf_counter), for ``setup_ms``.
        self.picked_up = picked_up
        self.stt = stt
        self.llm = llm
        self.tts = tts
        self.outcome = outcome
        self.config: dict[str, Any] = dict(turn.session.config or {})
        self.voice_settings = settings.VOICE
        self.timeout_s = float(settings.VOICE["STAGE_TIMEOUT_S"])
        #: Set once the first clause has been spoken (or turned out silent); until then
        #: the LLM waits after its first clause, so piper has the CPU to itself.
        self.first_clause_spoken = asyncio.Event()
        #: Database writes off the critical path, awaited before the turn is stored.
        self.background: list[asyncio.Task[Any]] = []
        #: A copy of the audio for review, only when audio retention is on (else None).
        self.recorder = TurnRecorder.start(utterance=audio)

    async def run(self) -> None:
        # The history does not depend on the transcript: read it while STT runs.
        history = asyncio.create_task(self._history())
        try:
            transcript = await self._transcribe()
        except BaseException:
            history.cancel()
            raise
        self.outcome.transcript = transcript
        if not transcript:
            history.cancel()
            raise AppError("no words were recognised in the audio", code=ErrorCode.BAD_AUDIO)
        passages = await self._retrieve(transcript)
        system = {
            "role": "system",
            "content": grounded_system_prompt(
                self.voice_settings["SYSTEM_PROMPT"],
                transcript,
                passages,
                sentences=self.voice_settings["GROUNDING_SENTENCES"],
            ),
        }
        messages = [system, *await history, {"role": "user", "content": transcript}]
        await self._reply(messages)

    async def settle(self) -> None:
        """Wait for the background writes (never raises: the final write follows)."""
        await asyncio.gather(*self.background, return_exceptions=True)

    async def _transcribe(self) -> str:
        if self.turn.input_kind == Turn.InputKind.TEXT:
            await self.sink.emit("transcript", text=self.turn.transcript, final=True)
            return self.turn.transcript
        audio = self.audio
        if audio is None:
            raise AppError(
                "the recorded audio expired before it was processed", code=ErrorCode.BAD_AUDIO
            )
        await self.sink.emit("stage", stage="stt", state="started")
        start = time.perf_counter()
        self.outcome.timings["setup_ms"] = round((start - self.picked_up) * 1000, 1)
        async with stage_deadline("stt", self.timeout_s):
            result = await self.stt.transcribe(
                audio, language=self.config.get("input_language", "en")
            )
        self.outcome.timings["stt_ms"] = _ms(start)
        text = result.text.strip()
        await self.sink.emit("stage", stage="stt", state="done", ms=self.outcome.timings["stt_ms"])
        await self.sink.emit("transcript", text=text, final=True)
        # Kept at once, should the worker die later; nothing waits for this write.
        write = database_sync_to_async(services.turn_update)(
            turn_id=self.turn.pk, transcript=text, stt_ms=self.outcome.timings["stt_ms"]
        )
        self.background.append(asyncio.create_task(write))
        return text

    async def _retrieve(self, transcript: str) -> list[dict[str, Any]] | None:
        """The knowledge-base passages for the final transcript, best first.

        ``None`` when the knowledge base could not be asked (down, slow): the turn goes
        on without passages, and the client gets a non-fatal ``knowledge_unavailable``
        error. An empty list means it was asked and holds nothing relevant.
        """
        limit_s = float(settings.KNOWLEDGE["TIMEOUT_S"])
        start = time.perf_counter()
        try:
            result = await self._ask_knowledge(transcript, limit_s)
        except KnowledgeUnavailable as err:
            logger.warning(
                "turn %s goes on without the knowledge base: %s", self.turn.pk, err.message
            )
            await self.sink.emit(
                "error",
                code=str(ErrorCode.KNOWLEDGE_UNAVAILABLE),
                message=f"answering without the knowledge base: {err.message}",
                fatal=False,
            )
            return None
        finally:
            self.outcome.timings["retrieval_ms"] = _ms(start)
        self.outcome.sources = result.sources()
        return self.outcome.sources

    @staticmethod
    async def _ask_knowledge(transcript: str, limit_s: float) -> Any:
        """The retrieval limits its own remote calls; this also bounds the rest."""
        try:
            async with asyncio.timeout(limit_s + RETRIEVAL_SLACK_S):
                return await knowledge_retrieve_async(transcript, timeout_s=limit_s)
        except TimeoutError:
            raise KnowledgeUnavailable(
                f"the knowledge base did not answer within {limit_s:g} s"
            ) from None

    async def _history(self) -> list[dict[str, str]]:
        return await database_sync_to_async(history_messages)(
            session_id=self.turn.session_id,
            before_index=self.turn.index,
            limit=self.voice_settings["HISTORY_TURNS"],
        )

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
                        await self._hand_over(clause, clauses, start)
            rest = splitter.flush()
            if rest and rest.strip():
                await self._hand_over(rest, clauses, start)
        finally:
            await clauses.put(None)
        self.outcome.timings["llm_ms"] = _ms(start)
        self.outcome.reply = "".join(parts).strip()
        await self.sink.emit("stage", stage="llm", state="done", ms=self.outcome.timings["llm_ms"])
        if not self.outcome.reply:
            raise EmptyReplyError("the language model returned an empty reply")
        await self.sink.emit("reply.done", text=self.outcome.reply, sources=self.outcome.sources)

    async def _hand_over(
        self, clause: str, clauses: asyncio.Queue[str | None], llm_start: float
    ) -> None:
        """Queue a clause for TTS; after the first, let TTS speak it before going on."""
        await clauses.put(clause)
        if "llm_first_clause_ms" not in self.outcome.timings:
            self.outcome.timings["llm_first_clause_ms"] = _ms(llm_start)
            await self.first_clause_spoken.wait()

    async def _speak(self, clauses: asyncio.Queue[str | None]) -> None:
        rate = self.tts.sample_rate
        chunk_bytes = max(2, int(rate * self.voice_settings["AUDIO_CHUNK_MS"] / 1000)) * 2
        voice = self.config.get("voice", "")
        speed = float(self.config.get("speed", 1.0))
        self.offset_ms = 0.0
        index = 0
        tts_start = 0.0
        while (clause := await clauses.get()) is not None:
            clause_start = time.perf_counter()
            if index == 0:
                await self.sink.emit("stage", stage="tts", state="started")
                tts_start = clause_start
            pending = b""
            clause_offset = self.offset_ms
            async with stage_deadline("tts", self.timeout_s) as deadline:
                async for pcm in self.tts.synthesize(clause, voice=voice, speed=speed):
                    deadline.extend()
                    pending += pcm
                    while len(pending) >= chunk_bytes:
                        chunk, pending = pending[:chunk_bytes], pending[chunk_bytes:]
                        await self._send_audio(
                            chunk, rate, index, clause, clause_offset, clause_start
                        )
            pending = pending[: len(pending) // 2 * 2]
            if pending:
                await self._send_audio(pending, rate, index, clause, clause_offset, clause_start)
            self.first_clause_spoken.set()
            index += 1
        self.outcome.output_audio_seconds = self.offset_ms / 1000.0
        if index:
            await self.sink.emit("stage", stage="tts", state="done", ms=_ms(tts_start))

    async def _send_audio(
        self,
        chunk: bytes,
        rate: int,
        index: int,
        clause: str,
        clause_offset: float,
        clause_start: float,
    ) -> None:
        duration_ms = len(chunk) / 2 / rate * 1000.0
        await self.sink.emit(
            "audio",
            audio=chunk,
            sample_rate=rate,
            clause_index=index,
            clause_text=clause,
            clause_offset_ms=round(clause_offset, 1),
            offset_ms=round(self.offset_ms, 1),
            duration_ms=round(duration_ms, 1),
        )
        self.offset_ms += duration_ms
        if self.recorder is not None:
            self.recorder.keep_reply(chunk, rate)
        if "tts_first_audio_ms" not in self.outcome.timings:
            self.outcome.timings["tts_first_audio_ms"] = _ms(clause_start)
            self.first_clause_spoken.set()


def _as_app_error(turn_id: int, err: BaseException) -> AppError:
    """The error the client sees: the first real cause inside task groups, else internal."""
    while isinstance(err, BaseExceptionGroup):
        err = err.exceptions[0]
    if isinstance(err, AppError):
        return err
    logger.error("turn %s failed unexpectedly", turn_id, exc_info=err)
    return AppError("the server could not finish this turn", code=ErrorCode.INTERNAL)


async def turn_run(
    *, turn_id: int, reply_channel: str, enqueued_at: float | None = None
) -> TurnOutcome | None:
    """Run one queued turn to its end and store it. ``None`` if it was not queued."""
    picked_up = time.perf_counter()
    queue_ms = None if enqueued_at is None else round((time.time() - enqueued_at) * 1000, 1)
    stages = {stage: get_provider(stage) for stage in ("stt", "llm", "tts")}
    store = get_turn_store()
    # Claiming the turn and fetching its audio are independent round trips: overlap them.
    turn, audio = await asyncio.gather(
        database_sync_to_async(services.turn_start)(
            turn_id=turn_id, providers=providers_description()
        ),
        store.take_utterance(turn_id),
    )
    if turn is None:
        logger.info("turn %s is not queued any more; nothing to do", turn_id)
        return None
    sink = TurnSink(reply_channel, turn_id)
    outcome = TurnOutcome(transcript=turn.transcript)
    if queue_ms is not None:
        outcome.timings["queue_ms"] = queue_ms
    runner = TurnRunner(
        turn=turn, sink=sink, audio=audio, picked_up=picked_up, outcome=outcome, **stages
    )  # type: ignore[arg-type]
    await sink.emit("running")

    work = asyncio.create_task(runner.run())
    watcher = asyncio.create_task(_watch_cancel(store, sink, turn_id, work))
    try:
        await work
    except asyncio.CancelledError:
        if not watcher.done() or watcher.result() is not True:
            outcome.status = Turn.Status.FAILED
            outcome.error = AppError("the turn ran out of time", code=ErrorCode.TIMEOUT)
            await runner.settle()
            await _finish(turn_id, sink, outcome)
            raise
        outcome.status = Turn.Status.CANCELLED
    except Exception as err:  # noqa: BLE001 - every failure becomes a stored, failed turn
        outcome.status = Turn.Status.FAILED
        outcome.error = _as_app_error(turn_id, err)
    finally:
        watcher.cancel()
    await runner.settle()
    await _finish(turn_id, sink, outcome)
    if runner.recorder is not None:
        # After the turn is stored and the client told: review audio never delays a reply.
        await runner.recorder.save(turn_id)
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
        sources=outcome.sources or None,
        **{name: outcome.timings.get(name) for name in WORKER_TIMINGS},
    )
    data: dict[str, Any] = {"status": str(outcome.status), "timings": outcome.timings}
    if error is not None:
        data["error"] = error.to_dict()
    try:
        await sink.emit("finished", output_audio_seconds=outcome.output_audio_seconds, **data)
    except AppError:
        logger.warning("turn %s: the consumer is gone; the turn is stored", turn_id)
