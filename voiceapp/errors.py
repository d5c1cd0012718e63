"""Errors that carry a stable code, shared by the WebSocket, REST and the worker.

Every failure a client can see is one ``AppError`` subclass with a code from
``ErrorCode``; the consumer turns it into one ``error`` event and REST into one
``{"code","message"}`` body (``voiceapp.exceptions``).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    BAD_MESSAGE = "bad_message"
    BAD_AUDIO = "bad_audio"
    TOO_LARGE = "too_large"
    SESSION_NOT_FOUND = "session_not_found"
    STT_FAILED = "stt_failed"
    LLM_FAILED = "llm_failed"
    TTS_FAILED = "tts_failed"
    TIMEOUT = "timeout"
    BUSY = "busy"
    INTERNAL = "internal"


class AppError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL
    http_status = 500

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, object]:
        return {"code": str(self.code), "message": self.message}


class BadRequest(AppError):
    code = ErrorCode.BAD_MESSAGE
    http_status = 400


class BadAudio(AppError):
    code = ErrorCode.BAD_AUDIO
    http_status = 400


class TooLarge(AppError):
    code = ErrorCode.TOO_LARGE
    http_status = 413


class SessionNotFound(AppError):
    code = ErrorCode.SESSION_NOT_FOUND
    http_status = 404


class SessionForbidden(AppError):
    """The session exists but belongs to someone else (close code 4403)."""

    code = ErrorCode.SESSION_NOT_FOUND
    http_status = 404


class RateLimited(AppError):
    code = ErrorCode.RATE_LIMITED
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "retry_after": self.retry_after}


class Busy(AppError):
    code = ErrorCode.BUSY
    http_status = 409
