"""Short-lived turn state shared by the consumer and the worker.

The utterance audio travels from the consumer to the worker through here (a Redis key
with a TTL, or process memory on the embedded default) — never as a Celery argument.
The cancel flag goes the other way: the consumer sets it on barge-in and the worker
checks it between tokens and clauses.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from abc import ABC, abstractmethod

from django.conf import settings


class TurnStore(ABC):
    @abstractmethod
    async def put_utterance(self, turn_id: int, pcm: bytes) -> None: ...

    @abstractmethod
    async def take_utterance(self, turn_id: int) -> bytes | None:
        """Return and delete the utterance; ``None`` if it expired or never existed."""

    @abstractmethod
    async def cancel(self, turn_id: int) -> None: ...

    @abstractmethod
    async def is_cancelled(self, turn_id: int) -> bool: ...


class MemoryTurnStore(TurnStore):
    """Embedded default: the consumer and the in-process worker share this process."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._audio: dict[int, tuple[float, bytes]] = {}
        self._cancelled: dict[int, float] = {}

    def _expire(self, now: float) -> None:
        for key in [k for k, (t, _) in self._audio.items() if t < now]:
            del self._audio[key]
        for key in [k for k, t in self._cancelled.items() if t < now]:
            del self._cancelled[key]

    async def put_utterance(self, turn_id: int, pcm: bytes) -> None:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            self._audio[turn_id] = (now + self._ttl, pcm)

    async def take_utterance(self, turn_id: int) -> bytes | None:
        with self._lock:
            self._expire(time.monotonic())
            item = self._audio.pop(turn_id, None)
        return None if item is None else item[1]

    async def cancel(self, turn_id: int) -> None:
        with self._lock:
            self._cancelled[turn_id] = time.monotonic() + self._ttl

    async def is_cancelled(self, turn_id: int) -> bool:
        with self._lock:
            return turn_id in self._cancelled


class RedisTurnStore(TurnStore):
    """Production: any consumer process and any worker process see the same keys."""

    def __init__(self, url: str, prefix: str, ttl_s: int) -> None:
        self._url = url
        self._prefix = prefix
        self._ttl = ttl_s
        # redis.asyncio clients are bound to the loop that first used them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self):  # type: ignore[no-untyped-def]
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = redis.Redis.from_url(self._url)
            self._clients[loop] = client
        return client

    def _key(self, kind: str, turn_id: int) -> str:
        return f"{self._prefix}:turn:{turn_id}:{kind}"

    async def put_utterance(self, turn_id: int, pcm: bytes) -> None:
        await self._client().set(self._key("audio", turn_id), pcm, ex=self._ttl)

    async def take_utterance(self, turn_id: int) -> bytes | None:
        return await self._client().getdel(self._key("audio", turn_id))

    async def cancel(self, turn_id: int) -> None:
        await self._client().set(self._key("cancel", turn_id), b"1", ex=self._ttl)

    async def is_cancelled(self, turn_id: int) -> bool:
        return bool(await self._client().exists(self._key("cancel", turn_id)))


_store: TurnStore | None = None
_store_lock = threading.Lock()


def get_turn_store() -> TurnStore:
    global _store
    with _store_lock:
        if _store is None:
            voice = settings.VOICE
            if settings.REDIS_URL:
                _store = RedisTurnStore(
                    settings.REDIS_URL, voice["REDIS_PREFIX"], voice["UTTERANCE_TTL_S"]
                )
            else:
                _store = MemoryTurnStore(voice["UTTERANCE_TTL_S"])
        return _store


def reset_turn_store() -> None:
    """For tests that switch settings."""
    global _store
    with _store_lock:
        _store = None
