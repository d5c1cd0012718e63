"""The Weaviate store through the real weaviate-client against the local double.

A real Weaviate server was not available here; the double (tests/doubles/
weaviate_server.py) answers the REST and gRPC calls the client makes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import pytest

from knowledge.models import Document
from knowledge.registry import get_store, reset_knowledge_backends
from knowledge.retrieval import knowledge_retrieve
from knowledge.services import document_delete, document_ingest
from knowledge.stores.weaviate_store import collection_name, object_id
from tests.doubles.weaviate_server import Failure, WeaviateDouble
from tests.knowledge.conftest import HANDBOOK
from voiceapp.errors import ErrorCode, KnowledgeUnavailable

pytestmark = pytest.mark.django_db

COLLECTION = "VoiceappChunk_fake_hash_256"


def test_collection_and_tenant_are_created_on_demand(weaviate: WeaviateDouble) -> None:
    assert collection_name("fake-hash-256") == COLLECTION
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    schema = weaviate.collections[COLLECTION].schema
    assert schema["multiTenancyConfig"]["enabled"] is True
    assert schema["vectorConfig"]["default"]["vectorizer"] == {"none": {}}
    assert schema["vectorConfig"]["default"]["vectorIndexConfig"]["distance"] == "cosine"
    assert {p["name"]: p["dataType"] for p in schema["properties"]} == {
        "document_id": ["int"],
        "chunk_id": ["text"],
        "title": ["text"],
        "heading_path": ["text"],
        "text": ["text"],
    }
    assert weaviate.collections[COLLECTION].tenants == {"tenant-a"}
    stored = weaviate.objects(COLLECTION, "tenant-a")
    chunks = {c.key: c for c in document.chunks.all()}
    assert set(stored) == {str(object_id(document.pk, key)) for key in chunks}
    some = stored[str(object_id(document.pk, next(iter(chunks))))]
    assert some.properties["document_id"] == document.pk
    assert some.vectors["default"].shape == (256,)
    # The second document reuses the collection: no second create, one batch request.
    calls = len(weaviate.calls)
    document_ingest(name="other.md", data=b"# Other\n\nGeese graze grass.")
    assert weaviate.calls[calls:] == ["grpc BatchObjects"]


def test_search_returns_passages_with_cosine_scores(weaviate: WeaviateDouble) -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    result = knowledge_retrieve("How often do I turn the eggs?", limit=2)
    assert result.store == "weaviate" and len(result.passages) == 2
    best = result.passages[0]
    assert best.heading_path == "Farm handbook > Incubation > Turning"
    assert best.document_id == document.pk and best.title == "Farm handbook"
    assert best.chunk_id == document.chunks.get(position=1).key
    assert 0 < best.score <= 1 and best.score >= result.passages[1].score
    assert set(best.to_source()) == {"document_id", "title", "chunk_id", "text", "score"}
    assert weaviate.count("grpc Search") == 1


def test_a_changed_document_sends_only_changes(weaviate: WeaviateDouble) -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    before = set(weaviate.objects(COLLECTION, "tenant-a"))
    calls = len(weaviate.calls)
    changed = HANDBOOK.replace("three times a day", "five times a day")
    document_ingest(name="handbook.md", data=changed.encode())
    new_calls = weaviate.calls[calls:]
    assert new_calls.count("grpc BatchObjects") == 1
    assert [c for c in new_calls if c.startswith("DELETE /v1/objects/")] == [
        c for c in new_calls if c.startswith("DELETE")
    ]
    assert len([c for c in new_calls if c.startswith("DELETE")]) == 1
    after = set(weaviate.objects(COLLECTION, "tenant-a"))
    assert len(after) == 3 and len(before & after) == 2
    turning = document.chunks.get(position=1)
    assert (
        weaviate.objects(COLLECTION, "tenant-a")[str(object_id(document.pk, turning.key))]
        .properties["text"]
        .startswith("Turn the eggs five times")
    )
    # Unchanged upload: nothing is sent at all.
    calls = len(weaviate.calls)
    document_ingest(name="handbook.md", data=changed.encode())
    assert weaviate.calls[calls:] == []


def test_a_new_title_is_pushed_to_every_object(weaviate: WeaviateDouble) -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    document_ingest(name="handbook.md", data=HANDBOOK.encode(), title="Renamed")
    titles = {o.properties["title"] for o in weaviate.objects(COLLECTION, "tenant-a").values()}
    assert titles == {"Renamed"}


def test_delete_removes_the_documents_objects(weaviate: WeaviateDouble) -> None:
    keep, _ = document_ingest(name="keep.md", data=b"# Keep\n\nDucks swim.")
    gone, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    document_delete(document_id=gone.pk)
    assert weaviate.count("grpc BatchDelete") >= 1
    remaining = weaviate.objects(COLLECTION, "tenant-a").values()
    assert {o.properties["document_id"] for o in remaining} == {keep.pk}
    assert not Document.objects.filter(pk=gone.pk).exists()


def test_tenants_keep_deployments_apart(weaviate: WeaviateDouble, settings: Any) -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "WEAVIATE_TENANT": "tenant-b"}
    reset_knowledge_backends()
    assert knowledge_retrieve("turn the eggs").passages == []  # tenant-b is empty
    assert weaviate.collections[COLLECTION].tenants == {"tenant-a", "tenant-b"}
    assert len(weaviate.objects(COLLECTION, "tenant-a")) == 3


def test_a_model_change_uses_another_collection(weaviate: WeaviateDouble) -> None:
    from knowledge.services import documents_reindex
    from tests.knowledge.fakes import HashEmbedder

    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    HashEmbedder.model = "fake-hash-256-v2"
    documents_reindex(stale_only=True)
    assert len(weaviate.objects("VoiceappChunk_fake_hash_256_v2", "tenant-a")) == 3
    best = knowledge_retrieve("turn the eggs").passages[0]
    assert best.heading_path.endswith("Turning")


# --- failures: every one is KnowledgeUnavailable, in time ------------------------------------


def test_unreachable_weaviate_fails_indexing_and_search(settings: Any) -> None:
    settings.KNOWLEDGE = {
        **settings.KNOWLEDGE,
        "STORE": "weaviate",
        "WEAVIATE_URL": "http://127.0.0.1:9",  # nothing listens on the discard port
        "WEAVIATE_GRPC_PORT": 9,
        "WEAVIATE_TIMEOUT_S": 2.0,
    }
    reset_knowledge_backends()
    with pytest.raises(KnowledgeUnavailable) as caught:
        document_ingest(name="handbook.md", data=HANDBOOK.encode())
    assert caught.value.code == ErrorCode.KNOWLEDGE_UNAVAILABLE
    document = Document.objects.get()
    assert document.status == Document.Status.FAILED and "Weaviate" in document.error
    started = time.perf_counter()
    with pytest.raises(KnowledgeUnavailable):
        knowledge_retrieve("turn the eggs", timeout_s=1.0)
    assert time.perf_counter() - started < 2.0


def test_a_hanging_search_times_out(weaviate: WeaviateDouble) -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    weaviate.grpc_failures["Search"] = Failure(code=grpc.StatusCode.INTERNAL, delay=30)
    started = time.perf_counter()
    with pytest.raises(KnowledgeUnavailable) as caught:
        knowledge_retrieve("turn the eggs", timeout_s=0.5)
    elapsed = time.perf_counter() - started
    assert 0.4 < elapsed < 1.5, elapsed
    assert "within" in caught.value.message


def test_an_unavailable_server_is_not_retried_past_the_limit(weaviate: WeaviateDouble) -> None:
    """The client retries UNAVAILABLE with 1, 2, 4 ... s sleeps; our deadline cuts it."""
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    weaviate.grpc_failures["Search"] = Failure(code=grpc.StatusCode.UNAVAILABLE)
    started = time.perf_counter()
    with pytest.raises(KnowledgeUnavailable):
        knowledge_retrieve("turn the eggs", timeout_s=0.5)
    assert time.perf_counter() - started < 1.5


def test_search_errors_become_knowledge_unavailable(weaviate: WeaviateDouble) -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    weaviate.grpc_failures["Search"] = Failure(
        code=grpc.StatusCode.INTERNAL, message="shard is read-only", times=1
    )
    with pytest.raises(KnowledgeUnavailable) as caught:
        knowledge_retrieve("turn the eggs")
    assert "shard is read-only" in caught.value.message
    assert knowledge_retrieve("turn the eggs").passages  # the next call works again


def test_after_a_failure_searches_fail_fast_for_a_while(
    weaviate: WeaviateDouble, settings: Any
) -> None:
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "WEAVIATE_RETRY_AFTER_S": 30.0}
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    weaviate.grpc_failures["Search"] = Failure(code=grpc.StatusCode.INTERNAL, times=1)
    with pytest.raises(KnowledgeUnavailable):
        knowledge_retrieve("turn the eggs")
    searches = weaviate.count("grpc Search")
    with pytest.raises(KnowledgeUnavailable) as caught:
        knowledge_retrieve("turn the eggs")
    assert "moments ago" in caught.value.message
    assert weaviate.count("grpc Search") == searches  # not even tried


def test_schema_errors_fail_the_upload(weaviate: WeaviateDouble) -> None:
    weaviate.rest_failures["POST /v1/schema"] = Failure(status=500, message="disk full")
    with pytest.raises(KnowledgeUnavailable) as caught:
        document_ingest(name="handbook.md", data=HANDBOOK.encode())
    assert "disk full" in caught.value.message
    assert Document.objects.get().status == Document.Status.FAILED


def test_rejected_objects_fail_the_upload(weaviate: WeaviateDouble) -> None:
    weaviate.grpc_failures["BatchObjects"] = Failure(code=grpc.StatusCode.INTERNAL)
    with pytest.raises(KnowledgeUnavailable):
        document_ingest(name="handbook.md", data=HANDBOOK.encode())
    weaviate.grpc_failures.clear()
    # Re-indexing a failed document pushes every chunk.
    from knowledge.services import documents_reindex

    _reports, failures = documents_reindex(stale_only=True)
    assert failures == [] and len(weaviate.objects(COLLECTION, "tenant-a")) == 3


def test_a_delete_that_weaviate_refuses_keeps_the_document(weaviate: WeaviateDouble) -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    weaviate.grpc_failures["BatchDelete"] = Failure(code=grpc.StatusCode.INTERNAL)
    with pytest.raises(KnowledgeUnavailable):
        document_delete(document_id=document.pk)
    assert Document.objects.filter(pk=document.pk).exists()
    assert len(weaviate.objects(COLLECTION, "tenant-a")) == 3


def test_the_store_connects_once_and_skips_pypi(weaviate: WeaviateDouble) -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    knowledge_retrieve("eggs")
    knowledge_retrieve("turning")
    assert weaviate.count("GET /v1/meta") == 1
    assert weaviate.count("GET /v1/schema/" + COLLECTION) == 1
    assert get_store().describe()["tenant"] == "tenant-a"
    assert object_id(1, "k") == uuid.uuid5(uuid.UUID("6f0d7f5e-2b7c-4c55-9f55-4b1f3b0c8a21"), "1/k")
