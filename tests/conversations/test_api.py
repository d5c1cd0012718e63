"""The REST API in-process with the stage fakes: the HTTP fallback turn and the sessions.

Every field and every error of ``POST /api/voice/turns/`` (PROTOCOL.md "HTTP fallback"),
the stored turn behind each answer, and the user's own sessions.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import av
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import RateLimitPolicy, Turn, VoiceSession
from realtime.audio import decode_audio_file, read_wav, wav_bytes
from tests.conftest import policy_for, token_for
from tests.helpers import read_pcm

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/voice/turns/"
SPEECH = "q01_piper.wav"
ANSWER_FIELDS = {
    "session_id",
    "turn_id",
    "transcription",
    "response_text",
    "sources",
    "audio_base64",
    "audio_format",
    "timings",
}
EXTENSIONS = {"sample_rate", "status", "warnings"}
STORED_TIMINGS = set(Turn.TIMING_FIELDS)


def encode(pcm: bytes, container: str, codec: str, rate: int) -> bytes:
    """PCM16 16 kHz → a file in ``container`` (PyAV), as a browser or phone would send."""
    out_buffer = io.BytesIO()
    with av.open(out_buffer, mode="w", format=container) as out:
        stream: Any = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16000
        for resampled in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return out_buffer.getvalue()


def upload(data: bytes, name: str = "speech.wav", content_type: str = "audio/wav") -> Any:
    return SimpleUploadedFile(name, data, content_type=content_type)


def wav_upload(name: str = SPEECH) -> Any:
    return upload(wav_bytes(read_pcm(name)))


@pytest.fixture
def generous(user: Any) -> RateLimitPolicy:
    """Quotas out of the way: a REST client without session_id opens a session each time."""
    return policy_for(user)


@pytest.fixture
def api(user: Any, fake_stages: Any, generous: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert {"code", "message"} <= set(body), body
    assert isinstance(body["message"], str) and body["message"]
    return body


# --- a whole turn --------------------------------------------------------------------------


def test_voice_turn_answers_every_field_and_stores_the_turn(
    api: APIClient, fake_stages: Any
) -> None:
    speech = read_pcm(SPEECH)
    response = api.post(URL, {"audio": wav_upload()})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == ANSWER_FIELDS | EXTENSIONS
    assert body["transcription"] == fake_stages.transcript
    assert body["response_text"] == fake_stages.reply
    assert body["sources"] == []
    assert body["status"] == "completed"
    assert body["audio_format"] == "wav" and body["sample_rate"] == 16000
    reply_pcm, rate = read_wav(base64.b64decode(body["audio_base64"]))
    assert rate == 16000 and len(reply_pcm) / 32000 > 3.0  # 16 words at 0.3 s a word
    timings = body["timings"]
    assert STORED_TIMINGS <= set(timings) <= STORED_TIMINGS | {"queue_ms", "setup_ms"}
    assert all(timings[name] is not None and timings[name] >= 0 for name in STORED_TIMINGS)
    assert 0 < timings["first_audio_ms"] <= timings["total_ms"]
    # The STT got the whole utterance, decoded to PCM16 16 kHz.
    assert fake_stages.seen_audio_bytes == [len(speech)]

    turn = Turn.objects.select_related("session").get(pk=body["turn_id"])
    assert turn.session_id == body["session_id"] and turn.session.user.username == "alice"
    assert turn.transport == Turn.Transport.REST and turn.input_kind == Turn.InputKind.VOICE
    assert turn.status == Turn.Status.COMPLETED
    assert turn.transcript == body["transcription"] and turn.reply == body["response_text"]
    assert all(getattr(turn, name) is not None for name in STORED_TIMINGS)
    assert turn.first_audio_ms == timings["first_audio_ms"]
    assert turn.total_ms == timings["total_ms"]
    assert abs(turn.input_audio_seconds - len(speech) / 32000) < 0.01
    assert abs(turn.output_audio_seconds - len(reply_pcm) / 32000) < 0.01
    # A REST session is connected only during its request (concurrent-session quota).
    assert turn.session.status == VoiceSession.Status.CLOSED and turn.session.end_reason == "http"
    assert turn.session.config["output_format"] == "wav"


@pytest.mark.parametrize(
    ("container", "codec", "rate", "name"),
    [
        ("webm", "libopus", 48000, "speech.webm"),
        ("ogg", "libopus", 48000, "speech.ogg"),
        ("mp3", "libmp3lame", 22050, "speech.mp3"),
        ("mp3", "libmp3lame", 22050, "lies.wav"),  # the content decides, not the name
        ("webm", "libopus", 48000, "no-extension"),
    ],
)
def test_compressed_uploads_are_sniffed_and_decoded(
    api: APIClient, fake_stages: Any, container: str, codec: str, rate: int, name: str
) -> None:
    speech = read_pcm(SPEECH)
    data = encode(speech, container, codec, rate)
    response = api.post(URL, {"audio": upload(data, name, "application/octet-stream")})
    assert response.status_code == 201, response.content
    heard_seconds = fake_stages.seen_audio_bytes[0] / 32000
    assert abs(heard_seconds - len(speech) / 32000) < 0.1


def test_a_wav_named_mp3_still_works(api: APIClient) -> None:
    response = api.post(URL, {"audio": upload(wav_bytes(read_pcm(SPEECH)), "x.mp3", "audio/mpeg")})
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("output_format", "rate"), [("pcm16", 16000), ("mp3", 16000), ("opus", 48000)]
)
def test_output_formats(api: APIClient, output_format: str, rate: int) -> None:
    response = api.post(URL, {"text": "hello", "output_format": output_format})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["audio_format"] == output_format and body["sample_rate"] == rate
    audio = base64.b64decode(body["audio_base64"])
    if output_format == "pcm16":
        seconds = len(audio) / 2 / rate
    else:
        seconds = len(decode_audio_file(audio)) / 32000
    assert seconds > 3.0


def test_text_turn(api: APIClient, fake_stages: Any) -> None:
    response = api.post(
        URL, {"text": "  what temperature for eggs  ", "voice": "joe", "speed": "1.5"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["transcription"] == "what temperature for eggs"
    assert body["timings"]["stt_ms"] is None
    assert fake_stages.seen_audio_bytes == []
    turn = Turn.objects.select_related("session").get(pk=body["turn_id"])
    assert turn.input_kind == Turn.InputKind.TEXT and turn.transport == Turn.Transport.REST
    assert turn.session.config["voice"] == "joe" and turn.session.config["speed"] == 1.5


def test_history_across_two_rest_turns_reaches_the_llm(api: APIClient, fake_stages: Any) -> None:
    first = api.post(URL, {"audio": wav_upload()}).json()
    before = VoiceSession.objects.get(pk=first["session_id"]).last_seen_at
    second = api.post(URL, {"text": "and for duck eggs?", "session_id": first["session_id"]})
    assert second.status_code == 201, second.content
    assert second.json()["session_id"] == first["session_id"]
    history = fake_stages.seen_messages[1]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert history[1]["content"] == first["transcription"]
    assert history[2]["content"] == first["response_text"]
    assert history[3]["content"] == "and for duck eggs?"
    session = VoiceSession.objects.get(pk=first["session_id"])
    assert [t.index for t in session.turns.order_by("index")] == [0, 1]
    assert session.status == VoiceSession.Status.CLOSED and session.last_seen_at > before
    # Without session_id: a new session, no history.
    third = api.post(URL, {"text": "hello"}).json()
    assert third["session_id"] != first["session_id"]
    assert [m["role"] for m in fake_stages.seen_messages[2]] == ["system", "user"]


def test_sources_of_the_reply_reach_the_answer_and_the_session(
    api: APIClient, monkeypatch: Any
) -> None:
    """The passages of ``reply.done`` pass through unchanged, whatever their id types."""
    from realtime.pipeline import TurnSink

    sources = [
        {"document_id": 7, "title": "Eggs", "chunk_id": "7#3", "text": "37.5 C", "score": 0.87}
    ]
    emit = TurnSink.emit

    async def with_sources(self: Any, kind: str, audio: Any = None, **data: Any) -> None:
        if kind == "reply.done":
            data["sources"] = sources
        await emit(self, kind, audio, **data)

    monkeypatch.setattr(TurnSink, "emit", with_sources)
    body = api.post(URL, {"text": "how warm for eggs?"}).json()
    assert body["sources"] == sources
    Turn.objects.filter(pk=body["turn_id"]).update(sources=sources)
    detail = api.get(f"/api/sessions/{body['session_id']}/").json()
    assert detail["turns"][0]["sources"] == sources


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({}, "bad_message"),
        ({"text": "   "}, "bad_message"),
        ({"text": "hi", "audio": "AUDIO"}, "bad_message"),
        ({"text": "hi", "speed": "7"}, "bad_message"),
        ({"text": "hi", "speed": "fast"}, "bad_message"),
        ({"text": "hi", "output_format": "flac"}, "bad_message"),
        ({"text": "hi", "mode": "realtime"}, "bad_message"),
        ({"text": "hi", "session_id": "abc"}, "bad_message"),
        ({"text": "hi", "session_id": "0"}, "bad_message"),
        ({"text": "hi", "colour": "blue"}, "bad_message"),
        ({"text": "hi", "voice": "x" * 65}, "bad_message"),
        ({"text": "nul \x00 byte"}, "bad_message"),
        ({"audio": b""}, "bad_audio"),
        ({"audio": b"this is not audio at all" * 40}, "bad_audio"),
        ({"audio": bytes(range(256)) * 8}, "bad_audio"),
        ({"audio": b"RIFF\x00\x00\x00\x00WAVEjunk"}, "bad_audio"),
        ({"audio": "SHORT"}, "bad_audio"),
    ],
)
@pytest.mark.django_db  # refused before any database write: no transaction needed
def test_bad_input_is_400_with_a_code_and_stores_nothing(
    api: APIClient, form: dict[str, Any], code: str
) -> None:
    if form.get("audio") == "AUDIO":
        form["audio"] = wav_upload()
    elif form.get("audio") == "SHORT":
        form["audio"] = upload(wav_bytes(b"\x00\x01" * 1600))  # 0.1 s
    elif isinstance(form.get("audio"), bytes):
        form["audio"] = upload(form["audio"])
    response = api.post(URL, form)
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == code
    assert not Turn.objects.exists() and not VoiceSession.objects.exists()


def test_json_is_refused_as_bad_message(api: APIClient) -> None:
    response = api.post(URL, {"text": "hi"}, format="json")
    assert response.status_code == 415 and error_of(response)["code"] == "bad_message"


def test_no_words_recognised_fails_the_stored_turn_with_bad_audio(
    api: APIClient, fake_stages: Any
) -> None:
    fake_stages.transcript = ""
    response = api.post(URL, {"audio": wav_upload()})
    assert response.status_code == 400
    body = error_of(response)
    assert body["code"] == "bad_audio"
    turn = Turn.objects.get(pk=body["turn_id"])
    assert turn.session_id == body["session_id"]
    assert turn.status == Turn.Status.FAILED and turn.error_code == "bad_audio"


def test_oversize_upload_is_413(api: APIClient, settings: Any) -> None:
    settings.VOICE = {**settings.VOICE, "MAX_UPLOAD_BYTES": 4096}
    # Just over the limit: refused after parsing, from the file's size.
    response = api.post(URL, {"audio": upload(b"\x00" * 5000)})
    assert response.status_code == 413 and error_of(response)["code"] == "too_large"
    # Far over: refused from Content-Length, before the body is read.
    response = api.post(URL, {"audio": wav_upload()})
    assert response.status_code == 413 and error_of(response)["code"] == "too_large"
    assert not Turn.objects.exists()


def test_too_long_audio_and_text_are_413(api: APIClient, settings: Any) -> None:
    settings.VOICE = {**settings.VOICE, "MAX_UTTERANCE_SECONDS": 1, "MAX_TEXT_CHARS": 10}
    response = api.post(URL, {"audio": wav_upload()})
    assert response.status_code == 413 and error_of(response)["code"] == "too_large"
    response = api.post(URL, {"text": "eleven characters"})
    assert response.status_code == 413 and error_of(response)["code"] == "too_large"


def test_only_own_sessions_and_the_same_answer_for_missing_ones(
    api: APIClient, other_user: Any
) -> None:
    theirs = VoiceSession.objects.create(user=other_user)
    missing = theirs.pk + 1000
    for session_id in (theirs.pk, missing):
        response = api.post(URL, {"text": "hi", "session_id": str(session_id)})
        assert response.status_code == 404
        assert response.json() == {
            "code": "session_not_found",
            "message": f"session {session_id} does not exist",
        }
    assert not Turn.objects.exists()


def test_no_or_bad_token_is_401(fake_stages: Any, user: Any) -> None:
    client = APIClient()
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer not-a-token"}):
        response = client.post(URL, {"text": "hi"}, **headers)
        assert response.status_code == 401
        assert error_of(response)["code"] == "auth_failed"


# --- quotas ---------------------------------------------------------------------------------


def test_turns_per_day_is_429_with_retry_after(api: APIClient, generous: Any) -> None:
    generous.turns_per_day = 1
    generous.save()
    assert api.post(URL, {"text": "hi"}).status_code == 201
    response = api.post(URL, {"text": "again"})
    assert response.status_code == 429
    body = error_of(response)
    assert body["code"] == "rate_limited" and body["retry_after"] > 0
    assert response["Retry-After"] == str(body["retry_after"])
    assert Turn.objects.count() == 1


def test_sessions_per_hour_counts_rest_sessions(api: APIClient, generous: Any) -> None:
    generous.sessions_per_hour = 1
    generous.save()
    first = api.post(URL, {"text": "hi"}).json()
    assert api.post(URL, {"text": "again"}).status_code == 429
    # Keeping the session (session_id) is not a new one.
    resumed = api.post(URL, {"text": "again", "session_id": first["session_id"]})
    assert resumed.status_code == 201, resumed.content


# --- stage failures and time limits -------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        ({"stt_error": True}, 502, "stt_failed"),
        ({"llm_error_after": 0}, 502, "llm_failed"),
        ({"tts_error": True}, 502, "tts_failed"),
        ({"llm_crash": True}, 502, "internal"),
        ({"tts_hang": True}, 504, "timeout"),
    ],
)
def test_a_failed_stage_is_stored_and_answered_with_its_code(
    api: APIClient,
    fake_stages: Any,
    settings: Any,
    setup: dict[str, Any],
    status: int,
    code: str,
) -> None:
    settings.VOICE = {**settings.VOICE, "STAGE_TIMEOUT_S": 0.5}
    for name, value in setup.items():
        setattr(fake_stages, name, value)
    response = api.post(URL, {"audio": wav_upload()})
    assert response.status_code == status, response.content
    body = error_of(response)
    assert body["code"] == code
    turn = Turn.objects.get(pk=body["turn_id"])
    assert turn.status == Turn.Status.FAILED and turn.error_code == code
    assert turn.transport == Turn.Transport.REST and turn.total_ms is not None


def test_no_worker_is_503_busy(api: APIClient, settings: Any, monkeypatch: Any) -> None:
    from realtime import tasks

    settings.VOICE = {**settings.VOICE, "QUEUE_WAIT_S": 0.4}
    monkeypatch.setattr(tasks.turn_run_task, "delay", lambda *args: None)
    response = api.post(URL, {"text": "anyone there?"})
    assert response.status_code == 503
    body = error_of(response)
    assert body["code"] == "busy"
    turn = Turn.objects.get(pk=body["turn_id"])
    assert turn.status == Turn.Status.FAILED and turn.error_code == "busy"


def test_a_queue_that_refuses_the_task_is_503_busy(api: APIClient, monkeypatch: Any) -> None:
    from realtime import tasks

    def broken(*args: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.turn_run_task, "delay", broken)
    response = api.post(URL, {"text": "hello"})
    assert response.status_code == 503 and error_of(response)["code"] == "busy"


def test_a_worker_that_goes_silent_is_504(api: APIClient, settings: Any, monkeypatch: Any) -> None:
    from asgiref.sync import async_to_sync

    from conversations import services
    from realtime import tasks
    from realtime.pipeline import TurnSink

    settings.VOICE = {**settings.VOICE, "TURN_STALL_S": 0.5}

    def dies_after_starting(turn_id: int, reply_channel: str, *_: object) -> None:
        services.turn_start(turn_id=turn_id, providers={})
        async_to_sync(TurnSink(reply_channel, turn_id).emit)("running")

    monkeypatch.setattr(tasks.turn_run_task, "delay", dies_after_starting)
    response = api.post(URL, {"text": "hello"})
    assert response.status_code == 504
    body = error_of(response)
    assert body["code"] == "timeout"
    assert Turn.objects.get(pk=body["turn_id"]).error_code == "timeout"


def test_the_request_has_a_total_time_limit(
    api: APIClient, fake_stages: Any, settings: Any
) -> None:
    settings.VOICE = {**settings.VOICE, "HTTP_TURN_TIMEOUT_S": 0.6}
    fake_stages.token_delay_s = 0.2  # 16 words: 3.2 s, well past the limit
    started = time.monotonic()
    response = api.post(URL, {"text": "tell me a long story"})
    assert time.monotonic() - started < 3.0
    assert response.status_code == 504
    body = error_of(response)
    assert body["code"] == "timeout"
    turn = Turn.objects.get(pk=body["turn_id"])
    assert turn.status == Turn.Status.FAILED and turn.error_code == "timeout"
    assert fake_stages.cancelled_streams == 1  # the worker stopped too


# --- sessions API ---------------------------------------------------------------------------


def make_sessions(user: Any, count: int) -> list[VoiceSession]:
    now = timezone.now()
    return [
        VoiceSession.objects.create(user=user, started_at=now - timezone.timedelta(minutes=n))
        for n in range(count)
    ]


def test_sessions_list_is_own_newest_first_paginated(
    api: APIClient, user: Any, other_user: Any
) -> None:
    mine = make_sessions(user, 23)
    make_sessions(other_user, 3)
    Turn.objects.create(session=mine[0], index=0, transcript="hi")
    Turn.objects.create(session=mine[0], index=1, transcript="again")
    page1 = api.get("/api/sessions/").json()
    assert page1["count"] == 23 and len(page1["results"]) == 20 and page1["next"]
    assert [s["id"] for s in page1["results"]] == [s.pk for s in mine[:20]]
    assert page1["results"][0]["turn_count"] == 2 and page1["results"][1]["turn_count"] == 0
    page2 = api.get(page1["next"]).json()
    assert [s["id"] for s in page2["results"]] == [s.pk for s in mine[20:]]
    assert page2["next"] is None
    response = api.get("/api/sessions/?page=99")
    assert response.status_code == 400 and error_of(response)["code"] == "bad_message"


def test_session_detail_has_turns_with_every_timing(api: APIClient, other_user: Any) -> None:
    first = api.post(URL, {"audio": wav_upload()}).json()
    api.post(URL, {"text": "and then?", "session_id": first["session_id"]})
    detail = api.get(f"/api/sessions/{first['session_id']}/").json()
    assert detail["id"] == first["session_id"] and detail["turn_count"] == 2
    assert detail["status"] == "closed"  # REST sessions close after each request
    turn = detail["turns"][0]
    for name in (
        "id",
        "index",
        "status",
        "input_kind",
        "transport",
        "transcript",
        "reply",
        "reply_heard",
        "interrupted",
        "error_code",
        "sources",
        *Turn.TIMING_FIELDS,
    ):
        assert name in turn
    assert turn["id"] == first["turn_id"] and turn["transport"] == "rest"
    assert turn["transcript"] == first["transcription"] and turn["reply"] == first["response_text"]
    assert turn["input_kind"] == "voice" and detail["turns"][1]["input_kind"] == "text"
    assert all(turn[name] is not None for name in Turn.TIMING_FIELDS)
    assert turn["first_audio_ms"] == first["timings"]["first_audio_ms"]

    theirs = VoiceSession.objects.create(user=other_user)
    for session_id in (theirs.pk, theirs.pk + 1000, 2**63 + 5):
        response = api.get(f"/api/sessions/{session_id}/")
        assert response.status_code == 404, response.content
        assert error_of(response)["code"] == "session_not_found"


def test_sessions_need_a_token(user: Any) -> None:
    client = APIClient()
    for url in ("/api/sessions/", "/api/sessions/1/"):
        response = client.get(url)
        assert response.status_code == 401 and error_of(response)["code"] == "auth_failed"


def test_rest_sessions_do_not_pile_up_as_concurrent(api: Any, generous: Any) -> None:
    """A REST session counts as connected only while its request runs."""
    generous.max_concurrent_sessions = 1
    generous.save()
    for n in range(3):
        response = api.post(URL, {"text": f"question {n}"})
        assert response.status_code == 201, response.content
