"""The WebSocket consumer end to end in-process, with stage fakes (tests/fakes.py).

Every test asserts the event sequence a client sees, and that the connection still
serves afterwards where the protocol says an error is not fatal.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from conversations.models import Turn, VoiceSession
from tests.conftest import apolicy_for
from tests.helpers import read_pcm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SILENCE_1S = b"\x00\x00" * 16000


async def assert_serves(client: Any) -> None:
    """The connection is alive and answering after an error."""
    await client.send(type="ping", ts=42)
    assert (await client.until("pong"))["ts"] == 42


async def run_text_turn(client: Any, text: str = "hello there") -> dict[str, Any]:
    await client.send(type="text", text=text)
    return await client.until("turn.done")


@database_sync_to_async
def turns_of(session_id: int) -> list[Turn]:
    return list(Turn.objects.filter(session_id=session_id).order_by("index"))


# --- a whole turn ------------------------------------------------------------------------


async def test_text_turn_streams_the_whole_event_sequence(connect: Any, user: Any) -> None:
    client = await connect(user)
    done = await run_text_turn(client, "what temperature for eggs")
    types = client.types()
    assert types[0] == "turn.started"
    turn_id = client.events[0]["turn_id"]
    assert types.index("transcript") < types.index("reply.delta") < types.index("reply.done")
    assert types.index("audio.started") < types.index("audio.done") < types.index("turn.done")
    assert types[-1] == "turn.done"
    assert all(e.get("turn_id") == turn_id for e in client.events)
    deltas = "".join(e["text"] for e in client.events if e["type"] == "reply.delta")
    reply_done = next(e for e in client.events if e["type"] == "reply.done")
    assert reply_done["text"] == deltas.strip()
    assert reply_done["sources"] == []
    started = next(e for e in client.events if e["type"] == "audio.started")
    assert started["format"] == "pcm16" and started["sample_rate"] == 16000
    assert len(client.audio) > 16000 * 2  # more than a second of reply audio
    assert done["status"] == "completed"
    timings = done["timings"]
    assert set(timings) == {*Turn.TIMING_FIELDS, "queue_ms"}  # text turns have no setup_ms
    assert timings["first_audio_ms"] > 0 and timings["total_ms"] >= timings["first_audio_ms"]
    assert timings["llm_first_token_ms"] is not None and timings["tts_first_audio_ms"] is not None

    [turn] = await turns_of(await session_of(turn_id))
    assert turn.status == Turn.Status.COMPLETED
    assert turn.input_kind == Turn.InputKind.TEXT
    assert turn.transcript == "what temperature for eggs"
    assert turn.reply == reply_done["text"]
    assert turn.first_audio_ms == timings["first_audio_ms"]
    assert turn.total_ms is not None and turn.llm_ms is not None
    assert turn.output_audio_seconds > 1.0
    assert turn.providers["llm"]["name"] == "fake-llm"


@database_sync_to_async
def session_of(turn_id: int) -> int:
    return Turn.objects.get(pk=turn_id).session_id


async def test_voice_turn_with_server_vad(connect: Any, user: Any, fake_stages: Any) -> None:
    client = await connect(user)
    speech = read_pcm("q01_piper.wav")
    await client.send_audio(SILENCE_1S + speech + SILENCE_1S, frame_ms=20)
    started = await client.until("speech.started")
    stopped = await client.until("speech.stopped")
    assert 0 < started["at_ms"] < stopped["at_ms"]
    await client.until("turn.started")
    stt_done = await client.until("stage")
    assert stt_done == {**stt_done, "stage": "stt", "state": "started"}
    transcript = await client.until("transcript")
    assert transcript["final"] is True and transcript["text"] == fake_stages.transcript
    done = await client.until("turn.done")
    assert done["status"] == "completed" and done["timings"]["stt_ms"] is not None
    # The utterance handed to STT is the speech with a little context, not the silence.
    seconds = fake_stages.seen_audio_bytes[0] / 32000
    assert len(speech) / 32000 - 0.3 < seconds < len(speech) / 32000 + 1.0
    [turn] = await turns_of(await session_of(done["turn_id"]))
    assert turn.input_kind == Turn.InputKind.VOICE and turn.input_audio_seconds > 1.0


async def test_client_vad_commit_starts_the_turn(connect: Any, user: Any) -> None:
    client = await connect(user, vad="client")
    await client.send_audio(read_pcm("q06_espeak.wav"))
    await client.send(type="input_audio.commit")
    done = await client.until("turn.done")
    assert done["status"] == "completed"
    assert "speech.started" not in client.types()


async def test_input_audio_clear_drops_the_buffer(connect: Any, user: Any) -> None:
    client = await connect(user, vad="client")
    await client.send_audio(read_pcm("q06_espeak.wav"))
    await client.send(type="input_audio.clear")
    await client.send(type="input_audio.commit")
    error = await client.until("error")
    assert error["code"] == "bad_audio" and error["fatal"] is False
    await assert_serves(client)


async def test_resampled_and_wav_output(connect: Any, user: Any) -> None:
    client = await connect(user, output_format="wav")
    await run_text_turn(client)
    assert bytes(client.audio[:4]) == b"RIFF" and bytes(client.audio[8:12]) == b"WAVE"


async def test_pcm_at_48k_is_resampled(connect: Any, user: Any, fake_stages: Any) -> None:
    from realtime.audio import resample_pcm16

    client = await connect(user, vad="client", input_sample_rate=48000)
    speech = resample_pcm16(read_pcm("q06_espeak.wav"), 16000, 48000)
    for start in range(0, len(speech), 9600):
        await client.ws.send_to(bytes_data=speech[start : start + 9600])
    await client.send(type="input_audio.commit")
    await client.until("turn.done")
    expected = len(read_pcm("q06_espeak.wav"))
    assert abs(fake_stages.seen_audio_bytes[0] - expected) < 3200


# --- history -----------------------------------------------------------------------------


async def test_history_goes_to_the_llm_and_reset_forgets_it(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    client = await connect(user)
    await run_text_turn(client, "first question")
    await run_text_turn(client, "second question")
    second = fake_stages.seen_messages[1]
    assert second[0]["role"] == "system"
    assert second[1] == {"role": "user", "content": "first question"}
    assert second[2]["role"] == "assistant" and second[2]["content"] == fake_stages.reply
    assert second[-1] == {"role": "user", "content": "second question"}

    await client.send(type="session.reset")
    await client.until("session.reset")
    await run_text_turn(client, "third question")
    third = fake_stages.seen_messages[2]
    assert [m["role"] for m in third] == ["system", "user"]


# --- cancellation and barge-in -------------------------------------------------------------


async def test_response_cancel_stops_audio_at_once_and_keeps_only_what_was_heard(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    fake_stages.reply = " ".join(f"Sentence number {n} is here." for n in range(1, 30))
    fake_stages.token_delay_s = 0.02
    client = await connect(user)
    await client.send(type="text", text="tell me a long story")
    await client.until("audio.started")
    await asyncio.sleep(0.3)
    await client.send(type="response.cancel")
    await client.until("audio.done")
    done = await client.until("turn.done")
    assert done["status"] == "cancelled"
    assert fake_stages.reply.startswith(done["reply_heard"])
    audio_at_cancel = len(client.audio)
    # Nothing of the cancelled turn arrives any more: no audio, no events.
    assert await client.ws.receive_nothing(timeout=0.6, interval=0.05)
    assert len(client.audio) == audio_at_cancel
    await asyncio.sleep(0.2)
    [turn] = await turns_of(await session_of(done["turn_id"]))
    assert turn.status == Turn.Status.CANCELLED and turn.interrupted
    assert len(turn.reply_heard.split()) < len(fake_stages.reply.split())
    assert fake_stages.reply.startswith(turn.reply_heard)
    assert fake_stages.cancelled_streams == 1

    # The next turn's history holds the heard part, not the whole generated reply.
    await run_text_turn(client, "and then?")
    history = fake_stages.seen_messages[-1]
    assistant = [m["content"] for m in history if m["role"] == "assistant"]
    assert assistant == ([turn.reply_heard] if turn.reply_heard else [])


async def test_barge_in_by_speaking_over_the_reply(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    fake_stages.reply = " ".join(f"Part {n} of a long answer." for n in range(1, 40))
    fake_stages.token_delay_s = 0.02
    client = await connect(user)
    await client.send(type="text", text="talk for a while")
    first = await client.until("audio.started")
    await client.send_audio(read_pcm("q03_piper.wav"), frame_ms=20)
    await client.until("speech.started")
    done = await client.until("turn.done")
    assert done["turn_id"] == first["turn_id"] and done["status"] == "cancelled"
    assert done["reason"] == "barge-in"
    # The interrupting speech becomes the next turn once the user stops.
    await client.send_audio(SILENCE_1S, frame_ms=20)
    await client.until("speech.stopped")
    started = await client.until("turn.started")
    assert started["turn_id"] != first["turn_id"]
    await client.until("turn.done")


async def speak_then_resume(client: Any, fake_stages: Any, *, wait_after_audio_s: float) -> Any:
    """Say a question, wait for reply audio (plus a while), then speak again."""
    await client.send_audio(read_pcm("q06_piper.wav") + SILENCE_1S, frame_ms=20)
    first = await client.until("audio.started")
    await asyncio.sleep(wait_after_audio_s)
    await client.send_audio(read_pcm("q03_piper.wav"), frame_ms=20)
    done = await client.until("turn.done")
    assert done["turn_id"] == first["turn_id"] and done["status"] == "cancelled"
    await client.send_audio(SILENCE_1S, frame_ms=20)
    final = await client.until("turn.done")
    assert final["status"] == "completed"
    return done


async def test_speech_resuming_early_in_the_reply_continues_the_question(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    """A pause, then more words before a second of reply played: one question, folded."""
    fake_stages.reply = " ".join(f"Part {n} of a long answer." for n in range(1, 40))
    fake_stages.token_delay_s = 0.02
    client = await connect(user)
    done = await speak_then_resume(client, fake_stages, wait_after_audio_s=0.0)
    assert done["reason"] == "continued"
    first_len, second_len = fake_stages.seen_audio_bytes[0], fake_stages.seen_audio_bytes[-1]
    assert second_len > first_len + len(read_pcm("q03_piper.wav")) * 0.8  # carried audio
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.continued and turn.interrupted


async def test_speech_after_the_continuation_window_is_a_barge_in(
    connect: Any, user: Any, fake_stages: Any, settings: Any
) -> None:
    settings.VOICE = {**settings.VOICE, "CONTINUE_WITHIN_MS": 200}
    fake_stages.reply = " ".join(f"Part {n} of a long answer." for n in range(1, 40))
    fake_stages.token_delay_s = 0.02
    client = await connect(user)
    done = await speak_then_resume(client, fake_stages, wait_after_audio_s=0.5)
    assert done["reason"] == "barge-in"
    assert fake_stages.seen_audio_bytes[-1] < len(read_pcm("q03_piper.wav")) + 3 * 32000
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert not turn.continued and turn.interrupted


async def test_new_text_supersedes_a_turn_in_flight(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    fake_stages.stt_delay_s = 0.0
    fake_stages.token_delay_s = 0.05
    client = await connect(user)
    await client.send(type="text", text="first")
    first = await client.until("turn.started")
    await client.send(type="text", text="actually, second")
    cancelled = await client.until("turn.done")
    assert cancelled == {**cancelled, "turn_id": first["turn_id"], "status": "cancelled"}
    done = await client.until("turn.done")
    assert done["status"] == "completed" and done["turn_id"] != first["turn_id"]


async def test_disconnect_mid_turn_stores_the_turn_as_interrupted(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    fake_stages.token_delay_s = 0.05
    client = await connect(user)
    await client.send(type="text", text="hello")
    started = await client.until("turn.started")
    await client.ws.disconnect()
    await asyncio.sleep(0.5)
    turn = await database_sync_to_async(Turn.objects.get)(pk=started["turn_id"])
    assert turn.status == Turn.Status.CANCELLED and turn.interrupted
    session = await database_sync_to_async(VoiceSession.objects.get)(pk=turn.session_id)
    assert session.status == VoiceSession.Status.CLOSED and session.ended_at is not None


async def test_cancel_while_a_fully_sent_reply_still_plays_keeps_only_the_heard_part(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    """The whole reply was sent (turn.done) but the client is still playing it."""
    client = await connect(user)
    done = await run_text_turn(client, "how warm for eggs")
    assert done["status"] == "completed"
    await client.send(type="response.cancel", played_ms=1000)
    truncated = await client.until("reply.truncated")
    assert truncated["turn_id"] == done["turn_id"] and truncated["played_ms"] == 1000
    await assert_serves(client)
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert truncated["reply_heard"] == turn.reply_heard
    assert turn.status == Turn.Status.COMPLETED and turn.interrupted
    assert turn.reply_heard and fake_stages.reply.startswith(turn.reply_heard)
    assert len(turn.reply_heard.split()) < len(turn.reply.split())
    assert turn.output_audio_seconds == pytest.approx(1.0)
    await run_text_turn(client, "and then?")
    assistant = [m["content"] for m in fake_stages.seen_messages[-1] if m["role"] == "assistant"]
    assert assistant == [turn.reply_heard]


async def test_speaking_over_a_fully_sent_reply_is_a_barge_in(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    fake_stages.reply = " ".join(f"Part {n} of a long answer." for n in range(1, 12))
    client = await connect(user)
    done = await run_text_turn(client, "talk for a while")
    await client.send_audio(read_pcm("q03_piper.wav"), frame_ms=20)
    await client.until("speech.started")
    await asyncio.sleep(0.2)
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.status == Turn.Status.COMPLETED and turn.interrupted and not turn.continued
    assert len(turn.reply_heard.split()) < len(turn.reply.split())


async def test_a_reply_heard_to_its_end_is_not_interrupted(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    client = await connect(user)
    done = await run_text_turn(client)
    await client.send(type="response.cancel", played_ms=60_000)
    await assert_serves(client)
    assert "reply.truncated" not in client.types()
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.status == Turn.Status.COMPLETED and not turn.interrupted
    assert turn.heard_text == turn.reply


# --- stage failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "code"),
    [("stt_error", "stt_failed"), ("llm_error_after", "llm_failed"), ("tts_error", "tts_failed")],
)
async def test_stage_failure_fails_the_turn_but_not_the_session(
    connect: Any, user: Any, fake_stages: Any, failure: str, code: str
) -> None:
    setattr(fake_stages, failure, 2 if failure == "llm_error_after" else True)
    client = await connect(user, vad="client")
    await client.send_audio(read_pcm("q06_espeak.wav"))
    await client.send(type="input_audio.commit")
    error = await client.until("error")
    assert error["code"] == code and error["fatal"] is False and error["turn_id"]
    done = await client.until("turn.done")
    assert done["status"] == "failed"
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.status == Turn.Status.FAILED and turn.error_code == code

    setattr(fake_stages, failure, None if failure == "llm_error_after" else False)
    assert (await run_text_turn(client))["status"] == "completed"


async def test_an_unexpected_bug_fails_the_turn_as_internal(
    connect: Any, user: Any, fake_stages: Any
) -> None:
    fake_stages.llm_crash = True
    client = await connect(user)
    await client.send(type="text", text="hello")
    error = await client.until("error")
    assert error["code"] == "internal" and not error["fatal"]
    assert "bug" not in error["message"]  # no internals leak to the client
    done = await client.until("turn.done")
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.status == Turn.Status.FAILED and turn.error_code == "internal"
    fake_stages.llm_crash = False
    assert (await run_text_turn(client))["status"] == "completed"


async def test_a_stage_without_progress_times_out(
    connect: Any, user: Any, fake_stages: Any, settings: Any
) -> None:
    settings.VOICE = {**settings.VOICE, "STAGE_TIMEOUT_S": 0.5}
    fake_stages.tts_hang = True
    client = await connect(user)
    await client.send(type="text", text="hello")
    error = await client.until("error")
    assert error["code"] == "timeout" and not error["fatal"]
    assert (await client.until("turn.done"))["status"] == "failed"
    fake_stages.tts_hang = False
    assert (await run_text_turn(client))["status"] == "completed"


async def test_a_turn_no_worker_picks_up_fails_busy(
    connect: Any, user: Any, settings: Any, monkeypatch: Any
) -> None:
    from realtime import tasks

    settings.VOICE = {**settings.VOICE, "QUEUE_WAIT_S": 0.5}
    monkeypatch.setattr(tasks.turn_run_task, "delay", lambda *args: None)
    client = await connect(user)
    await client.send(type="text", text="anyone there?")
    error = await client.until("error")
    assert error["code"] == "busy"
    done = await client.until("turn.done")
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.status == Turn.Status.FAILED and turn.error_code == "busy"
    monkeypatch.undo()
    assert (await run_text_turn(client))["status"] == "completed"


async def test_a_worker_that_goes_silent_fails_the_turn_with_timeout(
    connect: Any, user: Any, settings: Any, monkeypatch: Any
) -> None:
    """A worker that starts a turn and then dies: no heartbeat, the watchdog fails it."""
    from conversations import services
    from realtime import tasks
    from realtime.pipeline import TurnSink

    settings.VOICE = {**settings.VOICE, "TURN_STALL_S": 0.6}

    def dies_after_starting(turn_id: int, reply_channel: str, *_: object) -> None:
        services.turn_start(turn_id=turn_id, providers={})
        from asgiref.sync import async_to_sync

        async_to_sync(TurnSink(reply_channel, turn_id).emit)("running")

    monkeypatch.setattr(tasks.turn_run_task, "delay", dies_after_starting)
    client = await connect(user)
    await client.send(type="text", text="hello")
    error = await client.until("error")
    assert error["code"] == "timeout" and not error["fatal"]
    done = await client.until("turn.done")
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.status == Turn.Status.FAILED and turn.error_code == "timeout"
    monkeypatch.undo()
    assert (await run_text_turn(client))["status"] == "completed"


# --- authentication and sessions ----------------------------------------------------------------


async def test_auth_by_first_message(connect: Any, user: Any) -> None:
    from tests.conftest import token_for

    client = await connect(expect_created=False)
    await client.send(type="auth", token=await database_sync_to_async(token_for)(user))
    created = await client.until("session.created")
    assert created["resumed"] is False and created["config"]["vad"] == "server"
    assert created["limits"]["max_session_seconds"] > 0
    await assert_serves(client)


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"])
async def test_bad_token_closes_4401(connect: Any, token: str) -> None:
    client = await connect(expect_created=False, token=token)
    error = await client.until("error")
    assert error["code"] == "auth_failed" and error["fatal"] is True
    assert (await client.next_event())["code"] == 4401


async def test_no_auth_message_in_time_closes_4401(connect: Any, settings: Any) -> None:
    settings.VOICE = {**settings.VOICE, "AUTH_TIMEOUT_S": 0.3}
    client = await connect(expect_created=False)
    error = await client.until("error")
    assert error["code"] == "auth_failed"
    assert (await client.next_event())["code"] == 4401


async def test_audio_before_auth_closes_4401(connect: Any) -> None:
    client = await connect(expect_created=False)
    await client.ws.send_to(bytes_data=SILENCE_1S[:640])
    assert (await client.until("error"))["code"] == "auth_failed"
    assert (await client.next_event())["code"] == 4401


async def test_inactive_user_token_is_refused(connect: Any, user: Any) -> None:
    from tests.conftest import token_for

    token = await database_sync_to_async(token_for)(user)
    user.is_active = False
    await database_sync_to_async(user.save)()
    client = await connect(expect_created=False, token=token)
    assert (await client.until("error"))["code"] == "auth_failed"


async def test_resume_own_session(connect: Any, user: Any) -> None:
    first = await connect(user)
    session_id = await turns_session(first)
    await first.ws.disconnect()
    client = await connect(user, expect_created=False, session_id=session_id)
    created = await client.until("session.created")
    assert created["session_id"] == session_id and created["resumed"] is True
    done = await run_text_turn(client, "after reconnecting")
    assert done["status"] == "completed"


async def turns_session(client: Any) -> int:
    await run_text_turn(client, "before the drop")
    return await session_of(client.events[-1]["turn_id"])


@pytest.mark.parametrize("whose", ["other", "missing"])
async def test_resume_someone_elses_or_a_missing_session_closes_4403(
    connect: Any, user: Any, other_user: Any, whose: str
) -> None:
    if whose == "other":
        session = await database_sync_to_async(VoiceSession.objects.create)(user=other_user)
        session_id = session.pk
    else:
        session_id = 987654
    client = await connect(user, expect_created=False, session_id=session_id)
    error = await client.until("error")
    assert error["code"] == "session_not_found" and error["fatal"]
    assert (await client.next_event())["code"] == 4403


async def test_bad_connect_options_close_with_a_readable_error(connect: Any, user: Any) -> None:
    client = await connect(user, expect_created=False, speed="9")
    error = await client.until("error")
    assert error["code"] == "bad_message" and "speed" in error["message"]
    assert (await client.next_event())["code"] == 4400


async def test_foreign_origin_is_refused(user: Any, fake_stages: Any) -> None:
    from channels.testing import WebsocketCommunicator

    from voiceapp.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws/voice/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


# --- limits ---------------------------------------------------------------------------------------


async def test_sessions_per_hour_closes_4429_with_retry_after(connect: Any, user: Any) -> None:
    await apolicy_for(user, sessions_per_hour=1)
    await connect(user)
    client = await connect(user, expect_created=False)
    error = await client.until("error")
    assert error["code"] == "rate_limited" and error["fatal"] and 0 < error["retry_after"] <= 3600
    assert (await client.next_event())["code"] == 4429


async def test_turns_per_day_refuses_the_turn_not_the_session(connect: Any, user: Any) -> None:
    await apolicy_for(user, turns_per_day=1)
    client = await connect(user)
    assert (await run_text_turn(client))["status"] == "completed"
    await client.send(type="text", text="one more")
    error = await client.until("error")
    assert error["code"] == "rate_limited" and not error["fatal"] and error["retry_after"] > 0
    await assert_serves(client)


async def test_idle_timeout_closes_4408(connect: Any, user: Any) -> None:
    await apolicy_for(user, idle_timeout_seconds=1)
    client = await connect(user)
    error = await client.until("error", timeout=5)
    assert error["code"] == "timeout" and error["fatal"]
    assert (await client.next_event())["code"] == 4408


async def test_session_time_limit_closes_4408(connect: Any, user: Any) -> None:
    await apolicy_for(user, max_session_seconds=1)
    client = await connect(user)
    await client.send(type="ping", ts=1)
    error = await client.until("error", timeout=5)
    assert error["code"] == "timeout" and "limit" in error["message"]
    assert (await client.next_event())["code"] == 4408


async def test_oversized_frame_closes_4413(connect: Any, user: Any, settings: Any) -> None:
    settings.VOICE = {**settings.VOICE, "MAX_FRAME_BYTES": 4096}
    client = await connect(user)
    await client.ws.send_to(bytes_data=b"\x00" * 8192)
    error = await client.until("error")
    assert error["code"] == "too_large" and error["fatal"]
    assert (await client.next_event())["code"] == 4413


async def test_too_long_utterance_is_refused(connect: Any, user: Any, settings: Any) -> None:
    settings.VOICE = {**settings.VOICE, "MAX_UTTERANCE_SECONDS": 1}
    client = await connect(user, vad="client")
    await client.send_audio(SILENCE_1S + SILENCE_1S)
    error = await client.until("error")
    assert error["code"] == "too_large" and not error["fatal"]
    await assert_serves(client)


# --- bad messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "bad_message"),
        ("[1, 2]", "bad_message"),
        ('{"type": "nope"}', "bad_message"),
        ('{"type": "text"}', "bad_message"),
        ('{"type": "text", "text": "   "}', "bad_message"),
        ('{"type": "session.update", "config": {"speed": 3}}', "bad_message"),
        ('{"type": "session.update", "config": {"colour": "red"}}', "bad_message"),
        ('{"type": "session.update", "config": {"mode": "realtime"}}', "bad_message"),
        ('{"type": "auth", "token": "again"}', "bad_message"),
        ('{"type": "text", "text": "' + "x" * 3000 + '"}', "too_large"),
    ],
)
async def test_bad_messages_get_an_error_and_the_session_stays(
    connect: Any, user: Any, raw: str, code: str
) -> None:
    client = await connect(user)
    await client.ws.send_to(text_data=raw)
    error = await client.until("error")
    assert error["code"] == code and error["fatal"] is False and error["message"]
    await assert_serves(client)


async def test_odd_length_pcm_is_bad_audio(connect: Any, user: Any) -> None:
    client = await connect(user)
    await client.ws.send_to(bytes_data=b"\x00\x01\x02")
    error = await client.until("error")
    assert error["code"] == "bad_audio" and not error["fatal"]
    await assert_serves(client)


async def test_garbage_webm_is_bad_audio(connect: Any, user: Any) -> None:
    client = await connect(user, input_format="webm")
    await client.ws.send_to(bytes_data=b"this is not webm at all" * 100)
    error = await client.until("error")
    assert error["code"] == "bad_audio" and not error["fatal"]
    await assert_serves(client)


async def test_session_update_changes_the_config(connect: Any, user: Any) -> None:
    client = await connect(user)
    await client.send(type="session.update", config={"speed": 1.5, "vad": "client"})
    updated = await client.until("session.updated")
    assert updated["config"]["speed"] == 1.5 and updated["config"]["vad"] == "client"
    await client.send_audio(read_pcm("q06_espeak.wav"))
    await client.send(type="input_audio.commit")
    assert (await client.until("turn.done"))["status"] == "completed"
