"""Tokens and passwords never reach a log line."""

from __future__ import annotations

import logging

import pytest

from voiceapp.logging import RedactSecretsFilter, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlLXBhcnQ"


@pytest.mark.parametrize(
    "line",
    [
        f"GET /ws/voice/?token={JWT}&vad=server",
        f"Authorization: Bearer {JWT}",
        f'{{"token": "{JWT}"}}',
        '{"password": "hunter2-secret"}',
        f"connected with {JWT} just now",
    ],
)
def test_secrets_are_redacted(line: str) -> None:
    cleaned = redact(line)
    assert JWT not in cleaned and "hunter2-secret" not in cleaned
    assert "[redacted]" in cleaned


def test_plain_lines_are_untouched() -> None:
    line = "turn 12 failed: timeout (the answer stopped arriving)"
    assert redact(line) == line


def test_the_filter_rewrites_records_with_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "login %s", (JWT,), None)
    assert RedactSecretsFilter().filter(record)
    assert JWT not in record.getMessage()
