"""Which provider serves each stage: one cached instance per process.

Backends are import strings in ``settings.VOICE_BACKENDS``; ``settings.VOICE["STT"]``
(and ``LLM``, ``TTS``) names the one to use. Instances are cached because each holds
loaded weights or HTTP connection pools; ``warm_up`` is called when a worker starts so
the first real turn does not pay for loading and for the lazy first inference.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from realtime.providers.base import LanguageModel, Provider, SpeechToText, TextToSpeech
from voiceapp.backends import BackendCache

logger = logging.getLogger(__name__)

STAGES = ("stt", "llm", "tts")

_providers = BackendCache()


def backend_name(stage: str) -> str:
    return str(settings.VOICE[stage.upper()])


def get_provider(stage: str) -> Provider:
    """The configured provider for ``stage`` ("stt", "llm" or "tts"), built once."""
    if stage not in STAGES:
        raise ImproperlyConfigured(f"Unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    name = backend_name(stage)
    provider: Provider = _providers.get(
        stage, name, settings.VOICE_BACKENDS[stage], setting=f"VOICE[{stage.upper()!r}]"
    )
    return provider


def providers_description() -> dict[str, dict[str, Any]]:
    """What served each stage, for ``Turn.providers``."""
    return {stage: get_provider(stage).describe() for stage in STAGES}


def reset_providers() -> None:
    """Drop cached instances (tests that change settings)."""
    _providers.clear()


def warm_up(stages: Iterable[str] = STAGES) -> dict[str, float]:
    """Load each stage and run one tiny inference; returns seconds spent per stage.

    The first call of each model pays for allocations and kernel selection
    (CTranslate2, llama.cpp, onnxruntime); doing it here keeps it off the first turn.
    Blocking: call it from a worker's startup, not from the event loop.
    """
    timings: dict[str, float] = {}
    for stage in stages:
        started = time.perf_counter()
        provider = get_provider(stage)
        provider.load()
        asyncio.run(_exercise(provider))
        timings[stage] = time.perf_counter() - started
        logger.info("warmed up %s (%s) in %.2f s", stage, provider.name, timings[stage])
    return timings


def warm_up_turn_path() -> None:
    """Everything a turn uses: the three stages, then the knowledge base's embedder and
    store. A knowledge base that cannot be reached yet is logged, never fatal."""
    warm_up()
    from django.db import close_old_connections

    from knowledge.retrieval import warm_up as knowledge_warm_up

    try:
        timings = knowledge_warm_up()
        logger.info("warmed up the knowledge base in %.2f s", sum(timings.values()))
    except Exception:
        logger.exception("could not warm up the knowledge base; retrieval will retry")
    finally:
        close_old_connections()


async def _exercise(provider: Provider) -> None:
    if provider.name == "openai":
        return  # a hosted API has nothing to warm and every call costs money
    if isinstance(provider, SpeechToText):
        # Half a second of quiet noise: long enough to run the model, nothing to say.
        await provider.transcribe(bytes(16_000), language="en")
    elif isinstance(provider, LanguageModel):
        messages = [{"role": "user", "content": "Hi"}]
        async for _ in provider.stream_reply(messages, max_tokens=2):
            pass
    elif isinstance(provider, TextToSpeech):
        async for _ in provider.synthesize("Hello."):
            pass


_warm_lock = threading.Lock()
_warm_started = False


def warm_up_in_background() -> None:
    """Embedded default: load the models in this (web) process once, off the event loop.

    Called at the first WebSocket connection or REST turn, so the first answer does not
    pay for loading; a Celery worker warms up in ``worker_process_init`` instead.
    """
    global _warm_started
    with _warm_lock:
        if _warm_started or not settings.VOICE["PRELOAD"]:
            return
        _warm_started = True
    threading.Thread(target=warm_up_turn_path, name="voiceapp-warm-up", daemon=True).start()
