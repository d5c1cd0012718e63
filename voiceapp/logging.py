"""Logging helpers: bearer tokens and JWTs never reach a log line."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    re.compile(r"(token=)[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+", re.IGNORECASE),
    re.compile(r"(\"(?:token|access|refresh|password)\"\s*:\s*\")[^\"]*", re.IGNORECASE),
    # Anything shaped like a JWT (three base64url parts, the first one a JSON header).
    re.compile(r"()eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message with tokens and passwords replaced by ``[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
