"""Where the turn pipeline's coroutine runs.

A Celery worker process keeps one event loop alive in a background thread for its whole
life, so the channel layer and Redis connections are made once, not per task
(``async_to_sync`` would build a new loop and pool on every call: ≈2 ms a send against
≈0.3 ms here). On the embedded default the ASGI server registers its own loop, so the
in-process "worker" sends to the in-memory channel layer from the loop that owns it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_server_loop: asyncio.AbstractEventLoop | None = None
_own_loop: asyncio.AbstractEventLoop | None = None


def register_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the consumer in an embedded (single-process) deployment."""
    global _server_loop
    with _lock:
        _server_loop = loop


def _background_loop() -> asyncio.AbstractEventLoop:
    global _own_loop
    with _lock:
        if _server_loop is not None and not _server_loop.is_closed():
            return _server_loop
        if _own_loop is None or _own_loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="voiceapp-worker-loop", daemon=True
            )
            thread.start()
            _own_loop = loop
        return _own_loop


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Schedule ``coro`` on the worker loop; the caller (a sync thread) may wait on it."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop())
