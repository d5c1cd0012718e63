"""knowledge_retrieve over the embedded store: the contract the turn pipeline relies on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from knowledge.registry import get_store
from knowledge.retrieval import knowledge_retrieve, knowledge_retrieve_async, warm_up
from knowledge.services import document_delete, document_ingest
from knowledge.stores.embedded import EmbeddedStore
from tests.knowledge.conftest import HANDBOOK
from tests.knowledge.fakes import HashEmbedder
from voiceapp.errors import ErrorCode, KnowledgeUnavailable

pytestmark = pytest.mark.django_db

SOURCE_KEYS = {"document_id", "title", "chunk_id", "text", "score"}


def test_passages_come_best_first_in_the_protocol_shape() -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    result = knowledge_retrieve("How often do I turn the eggs?", limit=2)
    assert result.store == "embedded" and result.model == "fake-hash-256"
    assert len(result.passages) == 2 and result.ms > 0
    best = result.passages[0]
    assert best.heading_path == "Farm handbook > Incubation > Turning"
    assert result.passages[0].score >= result.passages[1].score
    source = best.to_source()
    assert set(source) == SOURCE_KEYS  # PROTOCOL.md reply.done.sources item
    assert source["document_id"] == document.pk and source["title"] == "Farm handbook"
    assert source["chunk_id"] == document.chunks.get(position=1).key
    assert source["text"].startswith("Turn the eggs three times a day.")
    assert isinstance(source["score"], float)
    assert result.sources() == [p.to_source() for p in result.passages]


def test_limit_and_min_score(settings: Any) -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    assert len(knowledge_retrieve("eggs").passages) == 3  # TOP_K
    assert len(knowledge_retrieve("eggs", limit=1).passages) == 1
    assert knowledge_retrieve("eggs", min_score=1.5).passages == []
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "TOP_K": 2}
    assert len(knowledge_retrieve("eggs").passages) == 2


def test_unset_min_score_is_the_embedders_own(settings: Any, monkeypatch: Any) -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "MIN_SCORE": None}
    assert knowledge_retrieve("eggs").passages
    monkeypatch.setattr(HashEmbedder, "default_min_score", 1.5)
    assert knowledge_retrieve("eggs").passages == []


def test_empty_question_or_knowledge_base_costs_no_embedding() -> None:
    assert knowledge_retrieve("anything").passages == []
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    assert knowledge_retrieve("   ").passages == []
    assert HashEmbedder.queries == []


def test_the_cache_sees_new_changed_and_deleted_documents() -> None:
    store = get_store()
    assert isinstance(store, EmbeddedStore)
    first, _ = document_ingest(name="a.md", data=b"# A\n\nChickens like mealworms.")
    assert knowledge_retrieve("mealworms").passages[0].document_id == first.pk
    second, _ = document_ingest(name="b.md", data=b"# B\n\nDucks like duckweed.")
    assert knowledge_retrieve("duckweed").passages[0].document_id == second.pk
    document_ingest(name="b.md", data=b"# B\n\nGeese like grass.")
    assert knowledge_retrieve("grass geese").passages[0].text == "Geese like grass."
    document_delete(document_id=second.pk)
    assert {p.document_id for p in knowledge_retrieve("grass geese").passages} == {first.pk}


def test_a_cached_search_costs_one_small_query() -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    knowledge_retrieve("temperature")  # loads the matrix
    with CaptureQueriesContext(connection) as queries:
        knowledge_retrieve("temperature")
    assert len(queries) == 1 and "COUNT" in queries[0]["sql"].upper()


def test_keyword_bonus_breaks_near_ties(settings: Any) -> None:
    document_ingest(
        name="c.md",
        data=b"# C\n\n## Pasty butt\n\nDroppings stick to the vent of chicks.\n\n"
        b"## Coccidiosis\n\nBloody droppings in young birds mean coccidiosis.\n",
    )
    with_bonus = knowledge_retrieve("bloody droppings").passages
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "KEYWORD_WEIGHT": 0.0}
    without = knowledge_retrieve("bloody droppings").passages
    assert with_bonus[0].heading_path.endswith("Coccidiosis")
    assert with_bonus[0].score > without[0].score  # the bonus is added to the cosine
    assert with_bonus[0].score - without[0].score <= 0.05 + 1e-6


def test_failures_raise_the_warning_error() -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    HashEmbedder.fail_with = RuntimeError("boom")
    with pytest.raises(KnowledgeUnavailable) as caught:
        knowledge_retrieve("temperature")
    assert caught.value.code == ErrorCode.KNOWLEDGE_UNAVAILABLE
    assert caught.value.to_dict()["code"] == "knowledge_unavailable"


def test_warm_up_loads_the_embedder_and_the_store() -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    timings = warm_up()
    assert set(timings) == {"embedder", "store"}
    assert HashEmbedder.queries == ["warm up"]
    assert get_store().describe()["cached_chunks"] == {"fake-hash-256": 3}


@pytest.mark.django_db(transaction=True)
async def test_async_callers_get_the_same_result() -> None:
    from channels.db import database_sync_to_async

    await database_sync_to_async(document_ingest)(name="handbook.md", data=HANDBOOK.encode())
    result = await knowledge_retrieve_async("turn the eggs", limit=1)
    assert result.passages[0].heading_path.endswith("Turning")


def test_large_store_search_is_fast() -> None:
    """10 000 chunks: the search itself (not the embedding) stays in milliseconds."""
    import time

    from knowledge.stores.embedded import _Matrix

    store = EmbeddedStore()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((10_000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    from knowledge.keywords import KeywordIndex

    texts = [f"passage {i} about topic {i % 97}" for i in range(10_000)]
    matrix = _Matrix(
        fingerprint=("fixed",),
        vectors=vectors,
        document_ids=[1] * 10_000,
        keys=[str(i) for i in range(10_000)],
        heading_paths=[""] * 10_000,
        texts=texts,
        titles=["t"] * 10_000,
        keywords=KeywordIndex(texts),
    )
    store._matrices = {"m": matrix}
    store._matrix = lambda model: matrix  # type: ignore[method-assign]
    query = vectors[1234]
    started = time.perf_counter()
    for _ in range(20):
        best = store.search(model="m", vector=query, query="topic 7", limit=3, timeout_s=1)
    per_search_ms = (time.perf_counter() - started) / 20 * 1000
    assert best[0].chunk_id == "1234"
    assert per_search_ms < 20, per_search_ms
