"""The choices a client may offer for the session options (the voice page's settings).

They come from the configured providers — the voices the TTS backend has, the languages
the STT model knows — and from what the server has enabled (the realtime relay), so the
page never offers a voice that would fail the first turn.
"""

from __future__ import annotations

from typing import Any

from realtime.protocol import ProtocolError, SessionConfig
from realtime.providers.registry import get_provider
from voiceapp.errors import ErrorCode

#: False until the OpenAI Realtime relay exists; the consumer refuses ``mode=realtime``.
REALTIME_AVAILABLE = False
SPEED_RANGE = {"min": 0.5, "max": 2.0, "step": 0.1}


def voice_options() -> dict[str, Any]:
    """What a client may choose for ``voice``, languages, ``speed``, ``mode`` and ``vad``."""
    return {
        "voices": list(get_provider("tts").voices()),
        "languages": list(get_provider("stt").languages()),
        "speed": SPEED_RANGE,
        "modes": [
            {"value": "pipeline", "label": "Speech → LLM → speech", "available": True},
            {
                "value": "realtime",
                "label": "OpenAI Realtime relay",
                "available": REALTIME_AVAILABLE,
                "reason": "" if REALTIME_AVAILABLE else "not enabled on this server",
            },
        ],
        "vad": [
            {"value": "server", "label": "Hands-free"},
            {"value": "client", "label": "Push-to-talk"},
        ],
    }


def options_validate(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` checked as session options and against :func:`voice_options`.

    Returns the cleaned values; raises ``ProtocolError`` (``bad_message``) otherwise.
    """
    config = SessionConfig().updated(changes)
    clean = {name: getattr(config, name) for name in changes}
    offered = voice_options()
    voice = clean.get("voice")
    if voice and offered["voices"] and voice not in offered["voices"]:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"voice must be one of {', '.join(offered['voices'])}"
        )
    for key in ("input_language", "output_language"):
        if key in clean and clean[key] not in offered["languages"]:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"{key} must be one of {', '.join(offered['languages'])}"
            )
    if clean.get("mode") == "realtime" and not REALTIME_AVAILABLE:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "realtime mode is not enabled on this server")
    return clean
