"""The production path with the real things: daphne, Redis, a Celery worker, PostgreSQL
and the local offline models, driven from outside over HTTP and the WebSocket.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from realtime.client import VoiceClient, ws_url
from tests.helpers import DEV_AUDIO, read_pcm, reference_transcripts, word_error_rate
from tests.stack import ROOT, Stack

pytestmark = [pytest.mark.integration, pytest.mark.models]

ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def stack() -> Any:
    with Stack(
        log_dir=ARTIFACTS / "stack",
        extra_env={"VOICEAPP_TURN_STALL_S": "6", "VOICEAPP_QUEUE_WAIT_S": "60"},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    return stack.token()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def one_turn(stack: Stack, token: str, pcm: bytes | None = None, **kwargs: Any) -> Any:
    async with VoiceClient(ws_url(stack.base_url), token) as client:
        return await client.turn(pcm, **kwargs)


async def raw_session(stack: Stack, query: str, *frames: Any) -> list[Any]:
    """Open a socket with ``query``, send ``frames``, return what arrives until close."""
    received: list[Any] = []
    async with websockets.connect(f"{ws_url(stack.base_url)}?{query}", max_size=2**22) as ws:
        for frame in frames:
            await ws.send(frame)
        try:
            while True:
                message = await asyncio.wait_for(ws.recv(), 10)
                received.append(json.loads(message) if isinstance(message, str) else message)
        except websockets.ConnectionClosed as closed:
            received.append(("closed", closed.rcvd.code if closed.rcvd else None))
    return received


def assert_still_serves(stack: Stack, token: str) -> None:
    status, body = stack.health()
    assert status == 200, body
    result = run(one_turn(stack, token, text="Say hello."))
    assert result.status == "completed" and result.reply


def test_health_reports_every_part(stack: Stack) -> None:
    status, body = stack.health()
    assert status == 200
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["channel_layer"]["ok"] and body["workers"]["ok"]
    assert body["workers"]["mode"] == "celery" and body["workers"]["count"] >= 1


def test_spoken_question_gets_a_spoken_answer_and_is_stored(stack: Stack, token: str) -> None:
    result = run(one_turn(stack, token, read_pcm("jfk.wav")))
    assert result.status == "completed", result.errors
    assert word_error_rate(reference_transcripts()["jfk"], result.transcript) <= 0.15, (
        result.transcript
    )
    assert result.reply.strip()
    assert result.audio_format == "pcm16" and result.audio_seconds >= 0.5
    types = [event["type"] for event in result.events]
    # JFK pauses for over a second twice: the turns started at those pauses are folded
    # into the next (reason "continued"), and one turn answers the whole sentence.
    continued = [e for e in result.events if e.get("reason") == "continued"]
    assert len(continued) >= 1
    for expected in (
        "speech.started",
        "speech.stopped",
        "turn.started",
        "transcript",
        "reply.delta",
        "reply.done",
        "audio.started",
        "audio.done",
        "turn.done",
    ):
        assert expected in types
    [row] = stack.query(
        "SELECT status, transcript, reply, stt_ms, llm_first_token_ms, llm_ms,"
        " tts_first_audio_ms, first_audio_ms, total_ms, input_audio_seconds,"
        " output_audio_seconds FROM conversations_turn WHERE id = %s",
        result.turn_id,
    )
    assert row[0] == "completed" and row[1] == result.transcript and row[2] == result.reply
    assert all(value is not None and value > 0 for value in row[3:9]), row
    assert row[7] == result.timings["first_audio_ms"]
    assert row[9] > 9 and row[10] >= 0.5
    [(folded,)] = stack.query(
        "SELECT count(*) FROM conversations_turn WHERE continued AND status = 'cancelled'"
        " AND session_id = (SELECT session_id FROM conversations_turn WHERE id = %s)",
        result.turn_id,
    )
    assert folded == len(continued)


def test_cancel_through_the_real_worker(stack: Stack, token: str) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int]:
        async with VoiceClient(ws_url(stack.base_url), token) as client:
            await client.send_json(type="text", text="Tell me a long story about a dragon.")
            events: list[dict[str, Any]] = []
            while True:
                event = await client._receive_event(60)
                if event["type"] == "<audio>":
                    break
                events.append(event)
            await client.send_json(type="response.cancel")
            late_audio = 0
            done_seen = False
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    event = await client._receive_event(max(0.05, deadline - time.monotonic()))
                except TimeoutError:
                    break
                if event["type"] == "<audio>":
                    late_audio += 0 if not done_seen else len(event["bytes"])
                    continue
                events.append(event)
                if event["type"] == "turn.done":
                    done_seen = True
            return events, late_audio

    events, late_audio = run(scenario())
    done = [event for event in events if event["type"] == "turn.done"]
    assert done and done[0]["status"] == "cancelled"
    assert late_audio == 0
    turn_id = done[0]["turn_id"]
    time.sleep(1.0)
    [(status, interrupted)] = stack.query(
        "SELECT status, interrupted FROM conversations_turn WHERE id = %s", turn_id
    )
    assert status == "cancelled" and interrupted


@pytest.mark.parametrize(
    ("query", "frames", "code", "close"),
    [
        ("token=bad", [], "auth_failed", 4401),
        ("", [b"\x00\x00" * 160], "auth_failed", 4401),
        ("TOKEN&session_id=99999999", [], "session_not_found", 4403),
        ("TOKEN", [b"\x00" * 70000], "too_large", 4413),
        ("TOKEN&speed=7", [], "bad_message", 4400),
    ],
)
def test_error_and_close_codes_through_daphne(
    stack: Stack, token: str, query: str, frames: list[Any], code: str, close: int
) -> None:
    received = run(raw_session(stack, query.replace("TOKEN", f"token={token}"), *frames))
    errors = [item for item in received if isinstance(item, dict) and item.get("type") == "error"]
    assert errors and errors[-1]["code"] == code and errors[-1]["fatal"] is True
    assert received[-1] == ("closed", close)
    assert_still_serves(stack, token)


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (['{"type":"text"}'], "bad_message"),
        (["no json"], "bad_message"),
        ([b"\x01\x02\x03"], "bad_audio"),
        (['{"type":"input_audio.commit"}'], "bad_audio"),
    ],
)
def test_non_fatal_errors_through_daphne(
    stack: Stack, token: str, frames: list[Any], code: str
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with VoiceClient(ws_url(stack.base_url), token, vad="client") as client:
            for frame in frames:
                await client.ws.send(frame)
            error = await client._receive_event(10)
            await client.send_json(type="ping", ts="after")
            pong = await client._receive_event(10)
            return [error, pong]

    error, pong = run(scenario())
    assert error["type"] == "error" and error["code"] == code and error["fatal"] is False
    assert pong == {"type": "pong", "ts": "after"}


def test_killed_worker_fails_the_turn_and_the_session_goes_on(stack: Stack, token: str) -> None:
    async def scenario() -> tuple[dict[str, Any], Any]:
        async with VoiceClient(ws_url(stack.base_url), token) as client:
            await client.send_json(type="text", text="Tell me about chickens.")
            while True:
                event = await client._receive_event(30)
                if event.get("type") == "stage":
                    break
            for pid in stack.worker_children():
                os.kill(pid, signal.SIGKILL)
            error: dict[str, Any] = {}
            while True:
                event = await client._receive_event(60)
                if event.get("type") == "error":
                    error = event
                if event.get("type") == "turn.done":
                    break
            # The pool replaces the dead process; the same connection keeps working.
            after = await client.turn(text="Say hello.", timeout=180)
            return {**error, "status": event["status"]}, after

    outcome, after = run(scenario())
    assert outcome["status"] == "failed" and outcome["code"] == "timeout"
    assert after.status == "completed" and after.reply


def test_command_line_client_saves_the_spoken_answer(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime.client",
            str(DEV_AUDIO / "q01_piper.wav"),
            "--url",
            stack.base_url,
            "--username",
            stack.username,
            "--password",
            stack.password,
            "--out",
            str(out),
            "--fast",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"type": "turn.done"' in result.stdout and "first_audio_ms" in result.stdout
    import wave

    with wave.open(str(out), "rb") as wav:
        assert wav.getnframes() / wav.getframerate() >= 0.5
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime.client",
            "--text",
            "hi",
            "--url",
            stack.base_url,
            "--username",
            stack.username,
            "--password",
            "wrong",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "login failed" in bad.stderr


def test_tokens_never_reach_the_server_logs(stack: Stack, token: str) -> None:
    """Every test above connected with the token in the URL; no log line holds it."""
    run(one_turn(stack, token, text="Say hello."))
    for name in ("daphne", "worker"):
        log = (stack.log_dir / f"{name}.log").read_text(errors="replace")
        assert token not in log and token.split(".")[2] not in log, name
        assert stack.password not in log, name
