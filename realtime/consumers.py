"""``/ws/voice/``: parse, authorise, delegate, reply (PROTOCOL.md "WebSocket").

The consumer owns the edge of one connection: it authenticates, decodes incoming audio
to PCM16 16 kHz, runs the VAD, queues turns, and forwards the worker's events. It stops
forwarding a cancelled turn's audio at once, and records which part of the reply the
user heard, so that the history never holds words that were never played.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from conversations import services
from conversations.models import Turn
from realtime import loop as worker_loop
from realtime.audio import INPUT_RATE, StreamResampler, WebmStreamDecoder, make_output_encoder
from realtime.auth import user_from_token
from realtime.pipeline import delivered_timings
from realtime.protocol import (
    ClientType,
    CloseCode,
    ErrorCode,
    ProtocolError,
    ServerType,
    SessionConfig,
    error_event,
    parse_client_message,
    parse_query_config,
    server_event,
)
from realtime.providers.registry import warm_up_in_background
from realtime.store import get_turn_store
from realtime.vad import (
    SpeechSegmenter,
    SpeechStarted,
    SpeechStopped,
    acquire_detector,
    release_detector,
)
from voiceapp.errors import AppError, BadAudio, RateLimited, SessionForbidden, SessionNotFound

logger = logging.getLogger(__name__)

BYTES_PER_SECOND = INPUT_RATE * 2
MIN_UTTERANCE_S = 0.2
#: How often a connected session refreshes ``last_seen_at`` (concurrent-session quota).
SESSION_TOUCH_S = 30.0
#: How long after the last reply byte's playing time a reply still counts as playing.
PLAYBACK_MARGIN_MS = 300.0


@dataclass
class ActiveTurn:
    """What the consumer knows about the turn in flight."""

    turn_id: int
    committed_at: float
    last_event_at: float
    #: The user's audio of a voice turn, kept until reply audio starts (continuation).
    utterance: bytes = b""
    running: bool = False
    first_audio_at: float | None = None
    first_audio_ms: float | None = None
    encoder: Any = None
    #: One entry per reply clause whose audio was sent: [index, start_ms, end_ms, text].
    spoken: list[list[Any]] = field(default_factory=list)
    sent_audio_ms: float = 0.0

    def add_audio(
        self, clause_index: int, clause_text: str, start_ms: float, end_ms: float
    ) -> None:
        if self.spoken and self.spoken[-1][0] == clause_index:
            self.spoken[-1][2] = end_ms
        else:
            self.spoken.append([clause_index, start_ms, end_ms, clause_text])
        self.sent_audio_ms = end_ms

    def heard_text(self, played_ms: float) -> str:
        """The reply words the user heard after ``played_ms`` of playback.

        Whole clauses that finished playing, then the share of the clause that was
        playing when the user cut in, in proportion to its playing time.
        """
        words: list[str] = []
        for _index, start, end, text in self.spoken:
            clause_words = text.split()
            if played_ms >= end:
                words.extend(clause_words)
                continue
            if played_ms > start:
                share = (played_ms - start) / max(end - start, 1.0)
                words.extend(clause_words[: int(len(clause_words) * share)])
            break
        return " ".join(words)


class VoiceConsumer(AsyncWebsocketConsumer):
    # --- connection lifecycle ---------------------------------------------------------
    async def connect(self) -> None:
        await self.accept()
        self.user: Any = None
        self.session_id: int | None = None
        self.closing = False
        self.turn: ActiveTurn | None = None
        #: The last completed turn while its audio may still be playing on the client.
        self.playing: ActiveTurn | None = None
        self.voice = settings.VOICE
        self.store = get_turn_store()
        self.segmenter: SpeechSegmenter | None = None
        self.detector: Any = None
        self.resampler: StreamResampler | None = None
        self.webm: WebmStreamDecoder | None = None
        self.buffer = bytearray()
        #: Audio of a turn the user continued speaking over, prepended to the next utterance.
        self.carry = b""
        self.tasks: set[asyncio.Task[Any]] = set()
        self.connected_at = self.last_activity = time.monotonic()
        self.limits: Any = None
        if settings.EMBEDDED:
            worker_loop.register_server_loop(asyncio.get_running_loop())
            warm_up_in_background()

        query = dict(parse_qsl(self.scope.get("query_string", b"").decode("latin-1")))
        try:
            self.config, token, session_id = parse_query_config(query)
            self.resume_id = self._parse_session_id(session_id)
            self._check_mode(self.config)
        except ProtocolError as err:
            await self._fatal(err.code, err.message, CloseCode.BAD_REQUEST)
            return
        if token:
            await self._authenticate(token)
        else:
            self._spawn(self._auth_deadline())

    async def disconnect(self, code: int) -> None:
        self.closing = True
        for task in list(self.tasks):
            task.cancel()
        if self.turn is not None:
            await self._interrupt_turn(reason="disconnect")
        if self.detector is not None:
            release_detector(self.detector)
            self.detector = None
        if self.session_id is not None:
            await database_sync_to_async(services.session_close)(
                session_id=self.session_id, reason=f"disconnect {code}"
            )

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _fatal(self, code: ErrorCode, message: str, close_code: int, **extra: Any) -> None:
        if self.closing:
            return
        self.closing = True
        await self.send(text_data=error_event(code, message, fatal=True, **extra))
        # daphne accepts a plain int only (an IntEnum member is refused).
        await self.close(code=int(close_code))

    async def _error(self, err: AppError, turn_id: int | None = None) -> None:
        extra = {"retry_after": err.retry_after} if isinstance(err, RateLimited) else {}
        await self.send(text_data=error_event(err.code, err.message, turn_id=turn_id, **extra))

    async def _send_event(self, event_type: ServerType, **fields: Any) -> None:
        await self.send(text_data=server_event(event_type, **fields))

    @staticmethod
    def _parse_session_id(raw: str) -> int | None:
        if not raw:
            return None
        if not raw.isdigit():
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "session_id must be a session number")
        return int(raw)

    @staticmethod
    def _check_mode(config: SessionConfig) -> None:
        if config.mode != "pipeline":
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, "realtime mode is not enabled on this server"
            )

    # --- authentication and session -------------------------------------------------------
    async def _auth_deadline(self) -> None:
        await asyncio.sleep(self.voice["AUTH_TIMEOUT_S"])
        if self.user is None:
            await self._fatal(
                ErrorCode.AUTH_FAILED,
                "no auth message within the time limit",
                CloseCode.NOT_AUTHENTICATED,
            )

    async def _authenticate(self, token: str) -> None:
        user = await database_sync_to_async(user_from_token)(token)
        if user is None:
            await self._fatal(
                ErrorCode.AUTH_FAILED,
                "the token is invalid or expired",
                CloseCode.NOT_AUTHENTICATED,
            )
            return
        self.user = user
        headers = dict(self.scope.get("headers", []))
        client = self.scope.get("client") or ["", 0]
        client_info = {
            "user_agent": headers.get(b"user-agent", b"").decode("latin-1")[:300],
            "ip": client[0],
        }
        try:
            session, resumed, self.limits = await database_sync_to_async(services.session_open)(
                user=user,
                mode=self.config.mode,
                config=self.config.to_dict(),
                client_info=client_info,
                resume_id=self.resume_id,
            )
        except RateLimited as err:
            await self._fatal(
                err.code, err.message, CloseCode.RATE_LIMITED, retry_after=err.retry_after
            )
            return
        except (SessionNotFound, SessionForbidden) as err:
            await self._fatal(err.code, err.message, CloseCode.FORBIDDEN)
            return
        self.session_id = session.pk
        self.connected_at = self.last_activity = time.monotonic()
        await self._reset_input()
        await self._send_event(
            ServerType.SESSION_CREATED,
            session_id=session.pk,
            resumed=resumed,
            config=self.config.to_dict(),
            limits={
                **self.limits.to_dict(),
                "max_utterance_seconds": self.voice["MAX_UTTERANCE_SECONDS"],
                "max_frame_bytes": self.voice["MAX_FRAME_BYTES"],
                "max_text_chars": self.voice["MAX_TEXT_CHARS"],
            },
        )
        self._spawn(self._supervise())

    async def _supervise(self) -> None:
        """Idle and session time limits, and the watchdog of the turn in flight."""
        max_session = self.limits.max_session_seconds
        idle = self.limits.idle_timeout_seconds
        last_touch = time.monotonic()
        while not self.closing:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if now - last_touch >= SESSION_TOUCH_S and self.session_id is not None:
                last_touch = now
                await database_sync_to_async(services.session_touch)(session_id=self.session_id)
            if now - self.connected_at >= max_session:
                await self._close_for_time(f"the session reached its limit of {max_session} s")
                return
            busy = self.turn is not None or (self.segmenter is not None and self.segmenter.speaking)
            if not busy and now - self.last_activity >= idle:
                await self._close_for_time(f"no activity for {idle} s")
                return
            turn = self.turn
            if turn is None:
                continue
            if not turn.running and now - turn.committed_at > self.voice["QUEUE_WAIT_S"]:
                await self._abandon_turn(ErrorCode.BUSY, "no worker is free to answer; try again")
            elif turn.running and now - turn.last_event_at > self.voice["TURN_STALL_S"]:
                await self._abandon_turn(ErrorCode.TIMEOUT, "the answer stopped arriving")

    async def _close_for_time(self, message: str) -> None:
        if self.turn is not None:
            await self._interrupt_turn(reason="time limit")
        await self._fatal(ErrorCode.TIMEOUT, message, CloseCode.TIME_LIMIT)

    # --- incoming frames -----------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        try:
            if bytes_data is not None:
                await self._receive_audio(bytes_data)
            elif text_data is not None:
                await self._receive_text(text_data)
        except ProtocolError as err:
            await self._error(err)
        except BadAudio as err:
            await self._reset_input()
            await self._error(err)

    async def _receive_text(self, raw: str) -> None:
        if len(raw) > self.voice["MAX_FRAME_BYTES"]:
            await self._fatal(
                ErrorCode.TOO_LARGE, "text frame too large", CloseCode.FRAME_TOO_LARGE
            )
            return
        message = parse_client_message(raw, max_text_chars=self.voice["MAX_TEXT_CHARS"])
        if self.user is None:
            if message.type is ClientType.AUTH:
                await self._authenticate(message.token)
            else:
                await self._fatal(
                    ErrorCode.AUTH_FAILED, "authenticate first", CloseCode.NOT_AUTHENTICATED
                )
            return
        if self.session_id is None:
            return  # authentication is still being decided
        handler = {
            ClientType.AUTH: self._on_auth_again,
            ClientType.SESSION_UPDATE: self._on_session_update,
            ClientType.INPUT_AUDIO_COMMIT: self._on_commit,
            ClientType.INPUT_AUDIO_CLEAR: self._on_clear,
            ClientType.TEXT: self._on_text,
            ClientType.RESPONSE_CANCEL: self._on_cancel,
            ClientType.SESSION_RESET: self._on_reset,
            ClientType.PING: self._on_ping,
        }[message.type]
        if message.type is not ClientType.PING:
            self.last_activity = time.monotonic()
        await handler(message)

    async def _on_auth_again(self, message: Any) -> None:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "already authenticated")

    async def _on_ping(self, message: Any) -> None:
        await self._send_event(ServerType.PONG, ts=message.ts)

    async def _on_session_update(self, message: Any) -> None:
        config = self.config.updated(message.config)
        self._check_mode(config)
        input_changed = (config.input_format, config.input_sample_rate, config.vad) != (
            self.config.input_format,
            self.config.input_sample_rate,
            self.config.vad,
        )
        self.config = config
        if input_changed:
            await self._reset_input()
        assert self.session_id is not None
        await database_sync_to_async(services.session_update_config)(
            session_id=self.session_id, mode=config.mode, config=config.to_dict()
        )
        await self._send_event(ServerType.SESSION_UPDATED, config=config.to_dict())

    async def _on_commit(self, message: Any) -> None:
        if self.config.vad == "server" and self.segmenter is not None:
            stopped = self.segmenter.force_end()
            audio = stopped.audio if stopped is not None else b""
            if stopped is not None:
                await self._send_event(ServerType.SPEECH_STOPPED, at_ms=stopped.at_ms)
        else:
            audio = bytes(self.buffer)
        self.buffer.clear()
        await self._commit_audio(audio)

    async def _on_clear(self, message: Any) -> None:
        await self._reset_input()

    async def _on_text(self, message: Any) -> None:
        await self._start_turn(input_kind=Turn.InputKind.TEXT, text=message.text)

    async def _on_cancel(self, message: Any) -> None:
        if self.turn is not None:
            await self._interrupt_turn(reason="cancel", played_ms=message.played_ms)
        else:
            await self._truncate_played(reason="cancel", played_ms=message.played_ms)

    async def _on_reset(self, message: Any) -> None:
        if self.turn is not None:
            await self._interrupt_turn(reason="reset")
        await self._reset_input()
        assert self.session_id is not None
        await database_sync_to_async(services.session_reset_history)(session_id=self.session_id)
        await self._send_event(ServerType.SESSION_RESET)

    async def _reset_input(self) -> None:
        """Start the input side afresh for the current config (decoder, resampler, VAD)."""
        self.buffer.clear()
        self.carry = b""
        self.webm = WebmStreamDecoder() if self.config.input_format == "webm" else None
        rate = self.config.input_sample_rate
        self.resampler = (
            StreamResampler(rate, INPUT_RATE)
            if self.config.input_format == "pcm16" and rate != INPUT_RATE
            else None
        )
        if self.config.vad != "server":
            self.segmenter = None
            return
        if self.detector is None:
            # Loading a detector takes ~70 ms: never on the event loop.
            self.detector = await asyncio.to_thread(acquire_detector)
        if self.segmenter is None:
            self.segmenter = SpeechSegmenter(
                self.detector,
                threshold=self.voice["VAD_THRESHOLD"],
                min_speech_ms=self.voice["VAD_MIN_SPEECH_MS"],
                hangover_ms=self.voice["VAD_HANGOVER_MS"],
                preroll_ms=self.voice["VAD_PREROLL_MS"],
                max_utterance_s=self.voice["MAX_UTTERANCE_SECONDS"],
            )
        else:
            self.segmenter.reset()

    async def _receive_audio(self, data: bytes) -> None:
        if self.user is None or self.session_id is None:
            await self._fatal(
                ErrorCode.AUTH_FAILED,
                "authenticate before sending audio",
                CloseCode.NOT_AUTHENTICATED,
            )
            return
        if len(data) > self.voice["MAX_FRAME_BYTES"]:
            await self._fatal(
                ErrorCode.TOO_LARGE,
                f"audio frames may be at most {self.voice['MAX_FRAME_BYTES']} bytes",
                CloseCode.FRAME_TOO_LARGE,
            )
            return
        pcm = self._decode(data)
        if not pcm:
            return
        if self.segmenter is None:
            self.buffer.extend(pcm)
            limit = self.voice["MAX_UTTERANCE_SECONDS"] * BYTES_PER_SECOND
            if len(self.buffer) > limit:
                self.buffer.clear()
                raise ProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"an utterance may be at most {self.voice['MAX_UTTERANCE_SECONDS']} s; "
                    "the buffered audio was dropped",
                )
            return
        for event in self.segmenter.feed(pcm):
            if isinstance(event, SpeechStarted):
                self.last_activity = time.monotonic()
                await self._send_event(ServerType.SPEECH_STARTED, at_ms=event.at_ms)
                await self._on_speech_started()
            elif isinstance(event, SpeechStopped):
                await self._send_event(ServerType.SPEECH_STOPPED, at_ms=event.at_ms)
                await self._commit_audio(event.audio)

    async def _on_speech_started(self) -> None:
        """The user speaks while a turn is in flight.

        No reply audio yet, or less than ``CONTINUE_WITHIN_MS`` of it played: the user
        only paused mid-sentence, so the turn is dropped and its audio carried into the
        next utterance — one question, answered once, with all its words. Later than
        that it is a barge-in: the reply stops and what they say is a new turn.
        """
        turn = self.turn
        if turn is None:
            # The reply may be fully sent and still playing: cutting into it is a barge-in.
            await self._truncate_played(reason="barge-in")
            return
        played_ms = (
            0.0
            if turn.first_audio_at is None
            else (time.perf_counter() - turn.first_audio_at) * 1000
        )
        if turn.utterance and played_ms < self.voice["CONTINUE_WITHIN_MS"]:
            carry = turn.utterance
            await self._interrupt_turn(reason="continued")
            if len(carry) < self.voice["MAX_UTTERANCE_SECONDS"] * BYTES_PER_SECOND // 2:
                self.carry = carry
        elif turn.first_audio_at is not None:
            await self._interrupt_turn(reason="barge-in")

    def _decode(self, data: bytes) -> bytes:
        if self.webm is not None:
            return self.webm.feed(data)
        if len(data) % 2:
            raise BadAudio("pcm16 frames must hold whole 16-bit samples (an even byte count)")
        if self.resampler is not None:
            return self.resampler.feed(data)
        return data

    # --- turns -----------------------------------------------------------------------------
    async def _commit_audio(self, audio: bytes) -> None:
        audio, self.carry = self.carry + audio, b""
        seconds = len(audio) / BYTES_PER_SECOND
        if seconds < MIN_UTTERANCE_S:
            raise BadAudio("no audio to commit (less than 0.2 s since the last turn)")
        await self._start_turn(input_kind=Turn.InputKind.VOICE, audio=audio)

    async def _start_turn(self, *, input_kind: str, audio: bytes = b"", text: str = "") -> None:
        committed_at = time.perf_counter()
        if self.turn is not None:
            await self._interrupt_turn(reason="superseded")
        assert self.session_id is not None
        try:
            turn = await database_sync_to_async(services.turn_create)(
                session_id=self.session_id,
                user=self.user,
                input_kind=input_kind,
                input_audio_seconds=len(audio) / BYTES_PER_SECOND,
                transcript=text,
            )
        except RateLimited as err:
            await self._error(err)
            return
        if audio:
            await self.store.put_utterance(turn.pk, audio)
        self.turn = ActiveTurn(
            turn_id=turn.pk,
            committed_at=committed_at,
            last_event_at=time.monotonic(),
            utterance=audio,
        )
        await self._send_event(ServerType.TURN_STARTED, turn_id=turn.pk)
        self._spawn(self._enqueue(turn.pk))

    async def _enqueue(self, turn_id: int) -> None:
        from realtime.tasks import turn_run_task

        try:
            # Eager on the embedded default: the task then runs the turn from a worker
            # thread; with Redis it only publishes. Either way, never on this loop.
            await sync_to_async(turn_run_task.delay, thread_sensitive=False)(
                turn_id, self.channel_name, time.time()
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("could not enqueue turn %s", turn_id)
            if self.turn is not None and self.turn.turn_id == turn_id:
                await self._abandon_turn(ErrorCode.BUSY, "the server could not queue this turn")

    async def _abandon_turn(self, code: ErrorCode, message: str) -> None:
        """The worker never finished: store the turn as failed and tell the client."""
        turn = self.turn
        if turn is None:
            return
        self.turn = None
        await self.store.cancel(turn.turn_id)
        await database_sync_to_async(services.turn_fail_if_unfinished)(
            turn_id=turn.turn_id, code=str(code), message=message
        )
        await self.send(text_data=error_event(code, message, turn_id=turn.turn_id))
        await self._end_audio(turn, flush=False)
        await self._send_event(
            ServerType.TURN_DONE,
            turn_id=turn.turn_id,
            status="failed",
            timings=self._timings(turn, {}),
        )

    async def _interrupt_turn(self, *, reason: str, played_ms: float | None = None) -> None:
        """Stop the reply now: nothing of this turn is forwarded after this point.

        ``played_ms`` is how much reply audio the client played (the voice page reports
        it with ``response.cancel``); without it, the wall time since the first audio byte
        is the estimate — the client plays as the audio arrives.
        """
        turn = self.turn
        if turn is None:
            return
        self.turn = None
        now = time.perf_counter()
        if played_ms is None:
            played_ms = 0.0 if turn.first_audio_at is None else (now - turn.first_audio_at) * 1000
        played_ms = min(played_ms, turn.sent_audio_ms)
        await self.store.cancel(turn.turn_id)
        timings = self._timings(turn, {})
        heard = turn.heard_text(played_ms)
        if not self.closing:
            await self._end_audio(turn, flush=False)
            await self._send_event(
                ServerType.TURN_DONE,
                turn_id=turn.turn_id,
                status="cancelled",
                reason=reason,
                reply_heard=heard,
                timings=timings,
            )
        await database_sync_to_async(services.turn_interrupt)(
            turn_id=turn.turn_id,
            continued=reason == "continued",
            reply_heard=heard,
            first_audio_ms=turn.first_audio_ms,
            total_ms=timings["total_ms"],
            output_audio_seconds=played_ms / 1000.0,
        )
        logger.info(
            "turn %s interrupted (%s) after %.0f ms of audio", turn.turn_id, reason, played_ms
        )

    def _still_playing(self) -> ActiveTurn | None:
        """The completed turn whose audio the client is probably still playing.

        The client plays audio as it arrives, so playback ends about ``sent_audio_ms``
        after the first byte; a margin covers the client's jitter buffer.
        """
        turn = self.playing
        if turn is None or turn.first_audio_at is None:
            return None
        ends_at = turn.first_audio_at + (turn.sent_audio_ms + PLAYBACK_MARGIN_MS) / 1000
        if time.perf_counter() > ends_at:
            self.playing = None
            return None
        return turn

    async def _truncate_played(self, *, reason: str, played_ms: float | None = None) -> None:
        """The user cut off a reply that was fully sent but still playing on their side.

        The turn stays ``completed`` (it was answered in full), but it is marked
        interrupted and keeps only the words that played, so the history holds what the
        user actually heard; ``reply.truncated`` says what was kept (``turn.done`` went
        out already).
        Only an explicit signal counts (``response.cancel``, speech over the reply): a
        client that hangs up or types on may never have played the audio at all.
        """
        turn = self._still_playing()
        self.playing = None
        if turn is None:
            return
        assert turn.first_audio_at is not None
        if played_ms is None:
            played_ms = (time.perf_counter() - turn.first_audio_at) * 1000
        if played_ms >= turn.sent_audio_ms:
            return  # the whole reply was heard
        heard = turn.heard_text(played_ms)
        await database_sync_to_async(services.turn_interrupt)(
            turn_id=turn.turn_id,
            reply_heard=heard,
            first_audio_ms=None,
            total_ms=None,
            output_audio_seconds=played_ms / 1000.0,
        )
        await self._send_event(
            ServerType.REPLY_TRUNCATED,
            turn_id=turn.turn_id,
            reply_heard=heard,
            played_ms=round(played_ms),
        )
        logger.info(
            "turn %s cut off during playback (%s) after %.0f ms of audio",
            turn.turn_id,
            reason,
            played_ms,
        )

    async def _end_audio(self, turn: ActiveTurn, *, flush: bool) -> None:
        """Close the turn's audio: the encoder's tail only when the reply ran to its end."""
        encoder, turn.encoder = turn.encoder, None
        if encoder is None or self.closing:
            return
        if flush:
            await self._send_audio_bytes(turn, encoder.flush())
        await self._send_event(ServerType.AUDIO_DONE, turn_id=turn.turn_id)

    async def _send_audio_bytes(self, turn: ActiveTurn, data: bytes) -> None:
        if not data:
            return
        await self.send(bytes_data=data)
        if turn.first_audio_at is None:
            turn.first_audio_at = time.perf_counter()
            turn.first_audio_ms = round((turn.first_audio_at - turn.committed_at) * 1000, 1)

    def _timings(self, turn: ActiveTurn, worker: dict[str, float]) -> dict[str, float | None]:
        total_ms = round((time.perf_counter() - turn.committed_at) * 1000, 1)
        return delivered_timings(worker, first_audio_ms=turn.first_audio_ms, total_ms=total_ms)

    # --- events from the worker ----------------------------------------------------------
    async def turn_event(self, message: dict[str, Any]) -> None:
        turn = self.turn
        if turn is None or message.get("turn_id") != turn.turn_id or self.closing:
            return  # a cancelled or finished turn: never forward stale events
        turn.last_event_at = time.monotonic()
        self.last_activity = turn.last_event_at
        kind, data = message["kind"], message.get("data", {})
        if kind == "running":
            turn.running = True
        elif kind == "alive":
            return
        elif kind == "audio":
            await self._forward_audio(turn, message["audio"], data)
        elif kind == "finished":
            await self._finish_turn(turn, data)
        else:
            await self.send(text_data=server_event(ServerType(kind), turn_id=turn.turn_id, **data))

    async def _forward_audio(self, turn: ActiveTurn, pcm: bytes, data: dict[str, Any]) -> None:
        if turn.encoder is None:
            turn.encoder = make_output_encoder(self.config.output_format, data["sample_rate"])
            await self._send_event(
                ServerType.AUDIO_STARTED,
                turn_id=turn.turn_id,
                format=self.config.output_format,
                sample_rate=turn.encoder.sample_rate,
            )
        await self._send_audio_bytes(turn, turn.encoder.encode(pcm))
        turn.add_audio(
            data["clause_index"],
            data["clause_text"],
            float(data["clause_offset_ms"]),
            float(data["offset_ms"]) + float(data["duration_ms"]),
        )

    async def _finish_turn(self, turn: ActiveTurn, data: dict[str, Any]) -> None:
        self.turn = None
        if data["status"] == "completed" and turn.first_audio_at is not None:
            self.playing = turn
        await self._end_audio(turn, flush=True)
        timings = self._timings(turn, data.get("timings", {}))
        error = data.get("error")
        if error:
            await self.send(
                text_data=error_event(
                    ErrorCode(error["code"]), error["message"], turn_id=turn.turn_id
                )
            )
        await self._send_event(
            ServerType.TURN_DONE, turn_id=turn.turn_id, status=data["status"], timings=timings
        )
        await database_sync_to_async(services.turn_record_delivery)(
            turn_id=turn.turn_id,
            first_audio_ms=turn.first_audio_ms,
            total_ms=timings["total_ms"],
            output_audio_seconds=turn.sent_audio_ms / 1000.0,
        )
