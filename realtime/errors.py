"""One error class per pipeline stage, each with a stable wire code.

Providers raise these (wrapping the vendor's error with ``raise ... from err``);
the pipeline turns one into one ``error`` event and a ``failed`` turn.
"""

from __future__ import annotations

from voiceapp.errors import AppError, ErrorCode


class StageError(AppError):
    """A pipeline stage could not do its work."""

    stage = ""


class SpeechToTextError(StageError):
    code = ErrorCode.STT_FAILED
    stage = "stt"


class LanguageModelError(StageError):
    code = ErrorCode.LLM_FAILED
    stage = "llm"


class TextToSpeechError(StageError):
    code = ErrorCode.TTS_FAILED
    stage = "tts"


class StageTimeout(StageError):
    code = ErrorCode.TIMEOUT
