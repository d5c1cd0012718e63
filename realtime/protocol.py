"""The wire contract of ``/ws/voice/`` (../shared/PROTOCOL.md, version 1).

Everything a client may send is parsed here into typed values, and every error code and
close code the server may use is named here, so the consumer never handles raw dicts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import IntEnum, StrEnum
from typing import Any

from voiceapp.errors import AppError, ErrorCode


class ClientType(StrEnum):
    AUTH = "auth"
    SESSION_UPDATE = "session.update"
    INPUT_AUDIO_COMMIT = "input_audio.commit"
    INPUT_AUDIO_CLEAR = "input_audio.clear"
    TEXT = "text"
    RESPONSE_CANCEL = "response.cancel"
    SESSION_RESET = "session.reset"
    PING = "ping"


class ServerType(StrEnum):
    SESSION_CREATED = "session.created"
    SESSION_UPDATED = "session.updated"
    SESSION_RESET = "session.reset"
    SPEECH_STARTED = "speech.started"
    SPEECH_STOPPED = "speech.stopped"
    TURN_STARTED = "turn.started"
    STAGE = "stage"
    TRANSCRIPT = "transcript"
    REPLY_DELTA = "reply.delta"
    REPLY_DONE = "reply.done"
    AUDIO_STARTED = "audio.started"
    AUDIO_DONE = "audio.done"
    TURN_DONE = "turn.done"
    #: Extension: a completed reply was cut off while it still played (protocol-extensions.md).
    REPLY_TRUNCATED = "reply.truncated"
    ERROR = "error"
    PONG = "pong"


class CloseCode(IntEnum):
    #: Extension: bad options in the connect URL (daphne only sends 1000 or 3000-4999).
    BAD_REQUEST = 4400
    NOT_AUTHENTICATED = 4401
    FORBIDDEN = 4403
    TIME_LIMIT = 4408
    FRAME_TOO_LARGE = 4413
    RATE_LIMITED = 4429


class TurnStatus(StrEnum):
    """Final statuses a client sees in ``turn.done``."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ProtocolError(AppError):
    """A client message the server cannot act on; becomes one ``error`` event."""

    http_status = 400

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message, code=code)


INPUT_FORMATS = ("pcm16", "webm")
OUTPUT_FORMATS = ("pcm16", "wav", "mp3", "opus")
MODES = ("pipeline", "realtime")
VAD_MODES = ("server", "client")
INPUT_SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class SessionConfig:
    """Options of a session: query parameters at connect time or ``session.update``."""

    input_language: str = "en"
    output_language: str = "en"
    voice: str = ""
    speed: float = 1.0
    preset: str = ""
    mode: str = "pipeline"
    input_format: str = "pcm16"
    input_sample_rate: int = 16000
    output_format: str = "pcm16"
    vad: str = "server"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: dict[str, Any]) -> SessionConfig:
        """Return a copy with ``changes`` applied; raise ``ProtocolError`` on any bad value."""
        if not isinstance(changes, dict):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "config must be an object")
        known = set(self.__dataclass_fields__)
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"unknown config option(s): {', '.join(unknown)}"
            )
        clean = {name: _validate_option(name, value) for name, value in changes.items()}
        return replace(self, **clean)


def _validate_option(name: str, value: Any) -> Any:
    def choice(options: tuple[str, ...]) -> str:
        if value not in options:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"{name} must be one of {', '.join(options)}"
            )
        return str(value)

    if name == "speed":
        try:
            speed = float(value)
        except (TypeError, ValueError):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "speed must be a number") from None
        if not 0.5 <= speed <= 2.0:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "speed must be between 0.5 and 2.0")
        return speed
    if name == "input_sample_rate":
        try:
            rate = int(value)
        except (TypeError, ValueError):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, "input_sample_rate must be an integer"
            ) from None
        if rate not in INPUT_SAMPLE_RATES:
            rates = ", ".join(str(r) for r in INPUT_SAMPLE_RATES)
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"input_sample_rate must be one of {rates}")
        return rate
    if name == "input_format":
        return choice(INPUT_FORMATS)
    if name == "output_format":
        return choice(OUTPUT_FORMATS)
    if name == "mode":
        return choice(MODES)
    if name == "vad":
        return choice(VAD_MODES)
    if not isinstance(value, str) or len(value) > 64:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{name} must be a short string")
    return value


CONFIG_QUERY_KEYS = tuple(SessionConfig.__dataclass_fields__)


@dataclass(frozen=True)
class ClientMessage:
    type: ClientType
    token: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    ts: Any = None
    played_ms: float | None = None


def parse_client_message(raw: str, *, max_text_chars: int) -> ClientMessage:
    """Parse one text frame. Raises ``ProtocolError(bad_message)`` with a readable reason."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "text frames must be JSON objects") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "text frames must be JSON objects")
    kind = data.get("type")
    try:
        msg_type = ClientType(kind)
    except ValueError:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown message type: {kind!r}") from None

    if msg_type is ClientType.AUTH:
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "auth needs a token string")
        return ClientMessage(msg_type, token=token)
    if msg_type is ClientType.SESSION_UPDATE:
        config = data.get("config")
        if not isinstance(config, dict):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "session.update needs a config object")
        return ClientMessage(msg_type, config=config)
    if msg_type is ClientType.TEXT:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "text needs a non-empty text string")
        if len(text) > max_text_chars:
            raise ProtocolError(
                ErrorCode.TOO_LARGE, f"text is longer than {max_text_chars} characters"
            )
        return ClientMessage(msg_type, text=text.strip())
    if msg_type is ClientType.PING:
        return ClientMessage(msg_type, ts=data.get("ts"))
    if msg_type is ClientType.RESPONSE_CANCEL:
        played = data.get("played_ms")
        if played is not None and (
            isinstance(played, bool) or not isinstance(played, int | float) or played < 0
        ):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "played_ms must be a non-negative number")
        return ClientMessage(msg_type, played_ms=None if played is None else float(played))
    return ClientMessage(msg_type)


def parse_query_config(query: dict[str, str]) -> tuple[SessionConfig, str, str]:
    """Split a connect query into (config, token, session_id); bad options raise."""
    options = {key: query[key] for key in CONFIG_QUERY_KEYS if key in query}
    config = SessionConfig().updated(options)
    return config, query.get("token", ""), query.get("session_id", "")


def server_event(event_type: ServerType, **fields: Any) -> str:
    return json.dumps({"type": str(event_type), **fields}, separators=(",", ":"))


def error_event(
    code: ErrorCode, message: str, *, fatal: bool = False, turn_id: int | None = None, **extra: Any
) -> str:
    fields: dict[str, Any] = {"code": str(code), "message": message, "fatal": fatal}
    if turn_id is not None:
        fields["turn_id"] = turn_id
    fields.update(extra)
    return server_event(ServerType.ERROR, **fields)
