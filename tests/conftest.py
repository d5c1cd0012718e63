"""Shared fixtures: users, tokens, stage fakes, and a connected WebSocket communicator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken

from conversations.models import RateLimitPolicy
from tests import fakes

FAKE_BACKENDS = {
    "stt": {"fake": "tests.fakes.FakeSTT"},
    "llm": {"fake": "tests.fakes.FakeLLM"},
    "tts": {"fake": "tests.fakes.FakeTTS"},
}


@pytest.fixture
def fake_stages(settings: Any) -> fakes.FakeBehaviour:
    """Route every pipeline stage to the fakes for this test."""
    from realtime.providers.registry import reset_providers
    from realtime.store import reset_turn_store

    settings.VOICE_BACKENDS = FAKE_BACKENDS
    settings.VOICE = {
        **settings.VOICE,
        "STT": "fake",
        "LLM": "fake",
        "TTS": "fake",
        "PRELOAD": False,
    }
    fakes.reset_fakes()
    reset_providers()
    reset_turn_store()
    yield fakes.FAKE
    reset_providers()
    reset_turn_store()


@pytest.fixture
def user(db: Any) -> Any:
    return get_user_model().objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def other_user(db: Any) -> Any:
    return get_user_model().objects.create_user("bob", password="bob-password-1")


#: Limits high enough never to stop a test that is not about them.
GENEROUS_LIMITS = {
    "sessions_per_hour": 100,
    "max_session_seconds": 3600,
    "idle_timeout_seconds": 600,
    "turns_per_day": 100,
    "audio_minutes_per_day": 100,
    "max_concurrent_sessions": 100,
}


def policy_for(user: Any, **limits: int) -> RateLimitPolicy:
    """A per-user policy: generous, but for the ``limits`` a test is about."""
    return RateLimitPolicy.objects.create(user=user, **{**GENEROUS_LIMITS, **limits})


async def apolicy_for(user: Any, **limits: int) -> RateLimitPolicy:
    return await database_sync_to_async(policy_for)(user, **limits)


def token_for(user: Any) -> str:
    return str(AccessToken.for_user(user))


class VoiceClient:
    """A WebsocketCommunicator with helpers to read protocol events."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator
        self.audio = bytearray()
        self.events: list[dict[str, Any]] = []
        self.session: dict[str, Any] = {}

    async def send(self, **message: Any) -> None:
        await self.ws.send_json_to(message)

    async def send_audio(self, pcm: bytes, frame_ms: int = 100) -> None:
        step = 16000 * 2 * frame_ms // 1000
        for start in range(0, len(pcm), step):
            await self.ws.send_to(bytes_data=pcm[start : start + step])

    async def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next text event; binary audio frames on the way are collected."""
        while True:
            message = await self.ws.receive_output(timeout)
            if message["type"] == "websocket.close":
                code = message.get("code")
                assert code is None or type(code) is int, "daphne only sends int close codes"
                event = {"type": "<close>", "code": code}
                self.events.append(event)
                return event
            if message.get("bytes") is not None:
                self.audio.extend(message["bytes"])
                continue
            import json

            event = json.loads(message["text"])
            self.events.append(event)
            return event

    async def until(self, event_type: str, timeout: float = 15.0) -> dict[str, Any]:
        while True:
            event = await self.next_event(timeout)
            if event["type"] == event_type:
                return event
            if event["type"] == "<close>":
                raise AssertionError(
                    f"closed ({event['code']}) before {event_type}: {self.types()}"
                )

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


@pytest.fixture
async def connect(fake_stages: Any) -> AsyncIterator[Any]:
    """``await connect(user, **query)`` → a VoiceClient after ``session.created``."""
    from voiceapp.asgi import application

    clients: list[VoiceClient] = []

    async def _connect(
        user: Any = None, *, expect_created: bool = True, **query: Any
    ) -> VoiceClient:
        params = dict(query)
        if user is not None:
            params.setdefault("token", await database_sync_to_async(token_for)(user))
        qs = "&".join(f"{key}={value}" for key, value in params.items())
        communicator = WebsocketCommunicator(application, f"/ws/voice/?{qs}")
        connected, _ = await communicator.connect()
        assert connected
        client = VoiceClient(communicator)
        clients.append(client)
        if expect_created:
            created = await client.next_event()
            assert created["type"] == "session.created", created
            client.session = created
            client.events.clear()
        return client

    yield _connect
    for client in clients:
        try:
            await client.ws.disconnect()
        except Exception:  # noqa: BLE001 - already closed by the server
            pass
