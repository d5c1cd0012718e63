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
    # Knowledge base (issue 5): uploads, lookups, and the retrieval warning.
    UNSUPPORTED_FILE = "unsupported_file"
    EMPTY_DOCUMENT = "empty_document"
    BAD_DOCUMENT = "bad_document"
    DOCUMENT_NOT_FOUND = "document_not_found"
    KNOWLEDGE_UNAVAILABLE = "knowledge_unavailable"


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


class UnsupportedFile(AppError):
    """A knowledge upload of a kind that is not read (only .txt, .md, .html, .pdf)."""

    code = ErrorCode.UNSUPPORTED_FILE
    http_status = 415


class EmptyDocument(AppError):
    """A knowledge upload with no text in it (an empty file, a scanned PDF)."""

    code = ErrorCode.EMPTY_DOCUMENT
    http_status = 400


class BadDocument(AppError):
    """A knowledge upload of a supported kind that cannot be read (a corrupt PDF)."""

    code = ErrorCode.BAD_DOCUMENT
    http_status = 400


class DocumentNotFound(AppError):
    code = ErrorCode.DOCUMENT_NOT_FOUND
    http_status = 404


class KnowledgeUnavailable(AppError):
    """The retrieval backend or the embedder failed or ran out of time.

    A warning, not a failure, for a voice turn: the turn goes on without passages.
    """

    code = ErrorCode.KNOWLEDGE_UNAVAILABLE
    http_status = 503
