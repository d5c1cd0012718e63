"""One small interface per pipeline stage.

Local providers wrap blocking model calls; they must never block the event loop, so
``transcribe`` runs in a thread and the streaming methods drive a blocking generator in
a thread through :func:`iterate_in_thread`. Models load lazily (``load()``), once per
process, never at import time.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str = ""


class Provider(ABC):  # noqa: B024 - the stage interfaces below are the abstract parts
    """Common part of every stage provider."""

    #: Short name stored with each turn (``turn.providers``).
    name: str = ""

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights or clients. Called once per process before first use (warm-up)."""

    def describe(self) -> dict[str, Any]:
        """What to record with a turn: provider and model names, versions."""
        return {"name": self.name}


#: Languages a multilingual speech-to-text model is offered in on the voice page.
MULTILINGUAL = ("en", "de", "es", "fr", "it", "nl", "pt", "pl", "sv", "ja", "zh")


class SpeechToText(Provider):
    def languages(self) -> tuple[str, ...]:
        """Language codes ``transcribe`` accepts (the voice page's language choices)."""
        return ("en",)

    @abstractmethod
    async def transcribe(self, audio: bytes, *, language: str = "en") -> Transcript:
        """Transcribe PCM16 little-endian mono 16 kHz audio."""


class LanguageModel(Provider):
    @abstractmethod
    def stream_reply(
        self, messages: list[dict[str, str]], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield reply text pieces (tokens) for OpenAI-style chat ``messages``."""


class TextToSpeech(Provider):
    #: Sample rate of the PCM16 mono audio that ``synthesize`` yields.
    sample_rate: int = 22050

    def voices(self) -> tuple[str, ...]:
        """Voice names ``synthesize`` accepts, the default first (the page's choices)."""
        return ()

    @abstractmethod
    def synthesize(self, text: str, *, voice: str = "", speed: float = 1.0) -> AsyncIterator[bytes]:
        """Yield PCM16 little-endian mono audio at ``sample_rate`` for ``text``."""


async def iterate_in_thread(
    factory: Callable[[threading.Event], Iterator[T]],
    *,
    max_ahead: int | None = None,
) -> AsyncIterator[T]:
    """Run a blocking generator in a worker thread and yield its items on the loop.

    ``factory(stop)`` builds the generator; it should check ``stop.is_set()`` between
    items so that closing this async iterator (cancellation, barge-in) also stops the
    thread promptly instead of letting it compute an answer nobody will hear.

    ``max_ahead`` bounds how many items the thread may produce before they are read:
    a reader that stops reading (the pipeline waiting for its first audio) then pauses
    the computation too, leaving the CPU to the stage that is on the critical path.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()
    room = threading.Semaphore(max_ahead) if max_ahead else None

    def wait_for_room() -> bool:
        if room is None:
            return True
        while not room.acquire(timeout=0.05):
            if stop.is_set():
                return False
        return True

    def emit(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is gone: nobody is listening any more
            stop.set()

    def produce() -> None:
        try:
            for item in factory(stop):
                if stop.is_set() or not wait_for_room():
                    break
                emit("item", item)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer side
            emit("error", err)
        else:
            emit("end", None)

    worker = loop.run_in_executor(None, produce)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                if room is not None:
                    room.release()
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        # Let the thread notice the stop flag; never wait for it on cancellation.
        worker.add_done_callback(lambda fut: fut.exception())
