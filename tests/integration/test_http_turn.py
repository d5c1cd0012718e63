"""The HTTP fallback through the production path: daphne, Redis, a Celery worker,
PostgreSQL and the local offline models, driven from outside over plain HTTP.
"""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from typing import Any

import pytest

from realtime.audio import read_wav
from tests.helpers import DEV_AUDIO, reference_transcripts, word_error_rate
from tests.stack import ROOT, Stack

pytestmark = [pytest.mark.integration, pytest.mark.models]


@pytest.fixture(scope="module")
def stack() -> Any:
    with Stack(log_dir=ROOT / "artifacts" / "stack-http") as running:
        yield running


def post_turn(stack: Stack, token: str, fields: dict[str, str], files: dict[str, bytes]) -> Any:
    """``POST /api/voice/turns/`` as multipart/form-data with the standard library only."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    for name, data in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(
        stack.base_url + "/api/voice/turns/",
        data=b"".join(parts),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status, json.loads(response.read())


def test_spoken_question_over_http_through_daphne_and_the_worker(stack: Stack) -> None:
    status, body = post_turn(
        stack, stack.token(), {}, {"audio": (DEV_AUDIO / "jfk.wav").read_bytes()}
    )
    assert status == 201, body
    assert word_error_rate(reference_transcripts()["jfk"], body["transcription"]) <= 0.15, body[
        "transcription"
    ]
    assert body["response_text"].strip()
    assert body["audio_format"] == "wav" and body["status"] == "completed"
    pcm, rate = read_wav(base64.b64decode(body["audio_base64"]))
    assert rate == body["sample_rate"] and len(pcm) / 2 / rate >= 0.5
    timings = body["timings"]
    assert 0 < timings["first_audio_ms"] <= timings["total_ms"]
    [row] = stack.query(
        "SELECT t.status, t.transport, t.input_kind, t.transcript, t.reply, t.stt_ms,"
        " t.llm_first_token_ms, t.llm_ms, t.tts_first_audio_ms, t.first_audio_ms, t.total_ms,"
        " t.output_audio_seconds, s.status FROM conversations_turn t"
        " JOIN conversations_voicesession s ON s.id = t.session_id WHERE t.id = %s",
        body["turn_id"],
    )
    assert row[:3] == ("completed", "rest", "voice")
    assert row[3] == body["transcription"] and row[4] == body["response_text"]
    assert all(value is not None and value > 0 for value in row[5:11]), row
    assert row[9] == timings["first_audio_ms"] and row[10] == timings["total_ms"]
    assert row[11] >= 0.5 and row[12] == "closed"  # REST sessions close after the request
