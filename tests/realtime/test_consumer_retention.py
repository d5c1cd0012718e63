"""Audio retention end to end: a turn over the WebSocket leaves playable recordings.

With ``AUDIO_RETENTION_DAYS=7`` the worker stores the user's utterance and the reply as
sent; with 0 it stores nothing and keeps no copy in memory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from conversations.models import TurnAudio
from realtime import recording
from realtime.audio import read_wav
from tests.helpers import read_pcm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@database_sync_to_async
def recordings_of(turn_id: int) -> dict[str, tuple[bytes, int]]:
    rows = TurnAudio.objects.filter(turn_id=turn_id)
    return {row.kind: read_wav(Path(row.file.path).read_bytes()) for row in rows}


def files_in(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


async def wait_for_recordings(turn_id: int, count: int) -> dict[str, tuple[bytes, int]]:
    """The worker stores audio after ``turn.done`` went out: wait for it a little."""
    for _ in range(100):
        found = await recordings_of(turn_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"turn {turn_id}: {len(found)} recordings, expected {count}")


async def voice_turn(connect: Any, user: Any) -> tuple[Any, dict[str, Any]]:
    client = await connect(user, vad="client")
    await client.send_audio(read_pcm("q06_espeak.wav"))
    await client.send(type="input_audio.commit")
    done = await client.until("turn.done")
    assert done["status"] == "completed"
    return client, done


async def test_voice_turn_keeps_input_and_output(
    connect: Any, user: Any, fake_stages: Any, settings: Any, media_root: Path
) -> None:
    settings.AUDIO_RETENTION_DAYS = 7
    client, done = await voice_turn(connect, user)
    found = await wait_for_recordings(done["turn_id"], 2)
    heard_pcm, heard_rate = found["input"]
    assert heard_rate == 16000 and len(heard_pcm) == fake_stages.seen_audio_bytes[0]
    reply_pcm, reply_rate = found["output"]
    # Exactly the reply audio the client received (pcm16 output is the PCM as sent).
    assert reply_rate == 16000 and reply_pcm == bytes(client.audio)
    assert len(await asyncio.to_thread(files_in, media_root)) == 2


async def test_text_turn_keeps_only_the_reply(
    connect: Any, user: Any, settings: Any, media_root: Path
) -> None:
    settings.AUDIO_RETENTION_DAYS = 7
    client = await connect(user)
    await client.send(type="text", text="hello there")
    done = await client.until("turn.done")
    found = await wait_for_recordings(done["turn_id"], 1)
    await asyncio.sleep(0.2)
    assert set(await recordings_of(done["turn_id"])) == {"output"}
    assert found["output"][0] == bytes(client.audio)


async def test_retention_off_stores_and_keeps_nothing(
    connect: Any, user: Any, settings: Any, media_root: Path, monkeypatch: Any
) -> None:
    settings.AUDIO_RETENTION_DAYS = 0
    made: list[object] = []
    original = recording.TurnRecorder.__init__

    def counting_init(self: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, **kwargs)

    monkeypatch.setattr(recording.TurnRecorder, "__init__", counting_init)
    _, done = await voice_turn(connect, user)
    await asyncio.sleep(0.3)  # the time a store would have taken
    assert await recordings_of(done["turn_id"]) == {}
    assert made == []  # no copy of the audio was ever held
    assert await asyncio.to_thread(files_in, media_root) == []


async def test_cancelled_turn_keeps_the_audio_that_was_sent(
    connect: Any, user: Any, fake_stages: Any, settings: Any, media_root: Path
) -> None:
    """The recording is what the worker sent, at least what the user heard (documented)."""
    settings.AUDIO_RETENTION_DAYS = 7
    fake_stages.reply = " ".join(f"Sentence number {n} is here." for n in range(1, 30))
    fake_stages.token_delay_s = 0.02
    client = await connect(user)
    await client.send(type="text", text="tell me a long story")
    await client.until("audio.started")
    await asyncio.sleep(0.3)
    await client.send(type="response.cancel")
    done = await client.until("turn.done")
    assert done["status"] == "cancelled"
    found = await wait_for_recordings(done["turn_id"], 1)
    reply_pcm, _ = found["output"]
    assert reply_pcm.startswith(bytes(client.audio))
    # Far less than the whole reply would have taken (29 sentences at 0.3 s a word).
    assert len(reply_pcm) < 16000 * 2 * 29 * 5 * 0.3
