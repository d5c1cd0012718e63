"""Quotas as a WebSocket client sees them: concurrent sessions and resuming at connect
(fatal, 4429), audio minutes per turn (not fatal), each with ``retry_after``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from conversations.models import Turn, VoiceSession
from conversations.ratelimits import SESSION_SEEN_WINDOW
from realtime import consumers
from tests.conftest import apolicy_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SILENCE_1S = b"\x00\x00" * 16000


async def assert_refused_at_connect(client: Any, *, within: int) -> dict[str, Any]:
    error = await client.until("error")
    assert error["code"] == "rate_limited" and error["fatal"]
    assert 0 < error["retry_after"] <= within
    assert (await client.next_event())["code"] == 4429
    return error


@database_sync_to_async
def spoken_today(user: Any, seconds: float) -> None:
    """Earlier speech today, on a closed session of the same user."""
    session = VoiceSession.objects.create(user=user, status=VoiceSession.Status.CLOSED)
    Turn.objects.create(session=session, index=0, input_audio_seconds=seconds)


async def test_the_seen_window_outlasts_a_missed_touch() -> None:
    assert SESSION_SEEN_WINDOW.total_seconds() >= 2 * consumers.SESSION_TOUCH_S


async def test_created_event_announces_every_limit(connect: Any, user: Any) -> None:
    await apolicy_for(user, audio_minutes_per_day=7, max_concurrent_sessions=2)
    limits = (await connect(user)).session["limits"]
    assert limits["audio_minutes_per_day"] == 7 and limits["max_concurrent_sessions"] == 2
    assert {"sessions_per_hour", "turns_per_day", "max_session_seconds"} <= set(limits)


async def test_concurrent_sessions_close_4429_until_one_disconnects(
    connect: Any, user: Any
) -> None:
    await apolicy_for(user, max_concurrent_sessions=1)
    first = await connect(user)
    second = await connect(user, expect_created=False)
    error = await assert_refused_at_connect(second, within=90)
    assert "same time" in error["message"]
    await first.ws.disconnect()
    await connect(user)


async def test_resume_needs_a_free_slot_but_not_the_hourly_quota(connect: Any, user: Any) -> None:
    await apolicy_for(user, sessions_per_hour=2, max_concurrent_sessions=1)
    first = await connect(user)
    session_id = first.session["session_id"]
    await first.ws.disconnect()
    second = await connect(user)
    resumed = await connect(user, expect_created=False, session_id=session_id)
    await assert_refused_at_connect(resumed, within=90)
    await second.ws.disconnect()
    for _ in range(2):  # two resumes within the hour, on a quota of two sessions per hour
        client = await connect(user, expect_created=False, session_id=session_id)
        assert (await client.until("session.created"))["resumed"] is True
        await client.ws.disconnect()
    third = await connect(user, expect_created=False)
    assert "per hour" in (await assert_refused_at_connect(third, within=3600))["message"]


async def test_audio_minutes_refuse_the_turn_not_the_session(connect: Any, user: Any) -> None:
    await apolicy_for(user, audio_minutes_per_day=1)
    await spoken_today(user, 59.0)
    client = await connect(user, vad="client")
    await client.send_audio(SILENCE_1S)  # exactly fills the minute
    await client.send(type="input_audio.commit")
    assert (await client.until("turn.done"))["status"] == "completed"
    await client.send_audio(SILENCE_1S)
    await client.send(type="input_audio.commit")
    error = await client.until("error")
    assert error["code"] == "rate_limited" and not error["fatal"]
    assert "minutes of audio" in error["message"] and error["retry_after"] > 0
    await client.send(type="text", text="typed questions still fit")
    assert (await client.until("turn.done"))["status"] == "completed"


async def test_a_connected_session_keeps_counting(
    connect: Any, user: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(consumers, "SESSION_TOUCH_S", 0.3)
    await apolicy_for(user, max_concurrent_sessions=1)
    client = await connect(user)
    long_ago = timezone.now() - timedelta(minutes=10)
    update = VoiceSession.objects.filter(pk=client.session["session_id"]).update
    await database_sync_to_async(update)(last_seen_at=long_ago)
    await asyncio.sleep(1.0)  # the consumer touches the session again
    await assert_refused_at_connect(await connect(user, expect_created=False), within=90)
