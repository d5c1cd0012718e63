"""What the turn pipeline calls: passages for a question, within a time limit.

    result = knowledge_retrieve("What temperature do eggs need?")
    result.passages   # best first; each .to_source() is a PROTOCOL.md ``sources`` item
    result.ms         # embedding the question + the search, milliseconds

Blocking (the embedder and the store are synchronous): call it from a worker thread or
through ``knowledge_retrieve_async`` from async code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from knowledge.registry import get_embedder, get_store
from knowledge.stores.base import Passage
from voiceapp.errors import KnowledgeUnavailable

logger = logging.getLogger(__name__)

#: Longest question embedded; a transcript beyond this is cut (e5 reads 512 tokens).
MAX_QUERY_CHARS = 1000


@dataclass(frozen=True)
class RetrievalResult:
    passages: list[Passage] = field(default_factory=list)
    ms: float = 0.0
    store: str = ""
    model: str = ""

    def sources(self) -> list[dict[str, Any]]:
        """``reply.done.sources``: the passages as PROTOCOL.md items, best first."""
        return [passage.to_source() for passage in self.passages]


def knowledge_retrieve(
    query: str,
    *,
    limit: int | None = None,
    timeout_s: float | None = None,
    min_score: float | None = None,
) -> RetrievalResult:
    """The passages of the knowledge base most similar to ``query``, best first.

    - ``limit``: at most this many passages (default ``KNOWLEDGE["TOP_K"]``).
    - ``min_score``: passages with a lower score are left out (default
      ``KNOWLEDGE["MIN_SCORE"]``, or when unset the embedder's ``default_min_score``).
    - ``timeout_s``: time limit of the remote calls (OpenAI embeddings, Weaviate);
      default ``KNOWLEDGE["TIMEOUT_S"]``. The embedded store makes no remote call.

    An empty question or an empty knowledge base gives an empty result, not an error.
    Raises ``KnowledgeUnavailable`` (code ``knowledge_unavailable``, a warning: the turn
    goes on without passages) when the embedder or the store fails or runs out of time.
    """
    started = time.perf_counter()
    options = settings.KNOWLEDGE
    limit = options["TOP_K"] if limit is None else limit
    timeout_s = options["TIMEOUT_S"] if timeout_s is None else timeout_s
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    store, embedder = get_store(), get_embedder()
    if min_score is None:
        configured = options["MIN_SCORE"]
        min_score = embedder.default_min_score if configured is None else configured
    model = embedder.model_name
    if not query or limit <= 0 or store.is_empty(model=model):
        return RetrievalResult(store=store.name, model=model, ms=_ms(started))
    try:
        vector = embedder.embed_query(query, timeout_s=timeout_s)
        remaining = timeout_s - (time.perf_counter() - started)
        if remaining <= 0:
            raise KnowledgeUnavailable(f"embedding the question took over {timeout_s:g} s")
        passages = store.search(
            model=model, vector=vector, query=query, limit=limit, timeout_s=remaining
        )
    except KnowledgeUnavailable as err:
        logger.warning("knowledge retrieval failed (%s): %s", store.name, err.message)
        raise
    except Exception as err:
        logger.exception("knowledge retrieval failed (%s)", store.name)
        raise KnowledgeUnavailable(f"retrieval failed: {type(err).__name__}") from err
    kept = [passage for passage in passages if passage.score >= min_score]
    return RetrievalResult(passages=kept, store=store.name, model=model, ms=_ms(started))


async def knowledge_retrieve_async(query: str, **options: Any) -> RetrievalResult:
    """``knowledge_retrieve`` for async callers: off the event loop, with database access."""
    return await database_sync_to_async(knowledge_retrieve)(query, **options)


def warm_up() -> dict[str, float]:
    """Load the embedder, embed once, open the store (matrix or client); seconds each.

    The first embedding pays for mapping the model and the first inference; doing it at
    worker start keeps that off the first question. Blocking. A store that cannot be
    reached is logged, not raised: retrieval will report it per question.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    embedder = get_embedder()
    embedder.load()
    embedder.embed_query("warm up")
    timings["embedder"] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        get_store().load()
    except KnowledgeUnavailable as err:
        logger.warning("knowledge store not ready at warm-up: %s", err.message)
    timings["store"] = time.perf_counter() - started
    return timings


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
