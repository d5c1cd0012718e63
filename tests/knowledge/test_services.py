"""Indexing: stable chunk ids, only changed passages embedded, model changes, deletion."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.models import Chunk, Document
from knowledge.retrieval import knowledge_retrieve
from knowledge.services import (
    document_delete,
    document_index,
    document_ingest,
    documents_reindex,
)
from tests.knowledge.conftest import HANDBOOK
from tests.knowledge.fakes import HashEmbedder
from voiceapp.errors import DocumentNotFound, ErrorCode, KnowledgeUnavailable

pytestmark = pytest.mark.django_db


def keys_by_section(document: Document) -> dict[str, str]:
    return {
        chunk.heading_path.rsplit(" > ", 1)[-1]: chunk.key
        for chunk in document.chunks.order_by("position")
    }


def test_ingest_indexes_a_file_before_returning(staff: Any) -> None:
    document, report = document_ingest(name="handbook.md", data=HANDBOOK.encode(), owner=staff)
    assert report.created and (report.chunks, report.embedded, report.reused) == (3, 3, 0)
    assert document.status == Document.Status.INDEXED and document.error == ""
    assert document.title == "Farm handbook" and document.kind == "md"
    assert document.owner == staff and document.indexed_at is not None
    assert document.embedding_model == "fake-hash-256"
    chunk = document.chunks.get(position=0)
    assert chunk.embedding_model == "fake-hash-256" and chunk.dims == 256
    assert len(chunk.embedding) == 256 * 4 and len(chunk.key) == 32
    assert len(HashEmbedder.embedded) == 3
    assert HashEmbedder.embedded[0].startswith("Farm handbook > Incubation > Temperature: Keep")


def test_reingesting_unchanged_embeds_nothing_and_keeps_ids() -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    before = keys_by_section(document)
    HashEmbedder.embedded.clear()
    again, report = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    assert again.pk == document.pk and not report.created
    assert (report.embedded, report.reused, report.removed) == (0, 3, 0)
    assert HashEmbedder.embedded == []
    assert keys_by_section(again) == before


def test_a_changed_document_reembeds_only_what_changed() -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    before = keys_by_section(document)
    ids_before = dict(document.chunks.values_list("key", "id"))
    layer_feed = HANDBOOK[HANDBOOK.index("### Layer feed") :]
    changed = HANDBOOK.replace("three times a day", "five times a day").replace(layer_feed, "")
    changed += "\n### Grit\n\nOffer insoluble grit when the birds eat whole grains.\n"
    HashEmbedder.embedded.clear()
    document, report = document_ingest(name="handbook.md", data=changed.encode())
    after = keys_by_section(document)
    assert (report.chunks, report.embedded, report.reused, report.removed) == (3, 2, 1, 2)
    assert after["Temperature"] == before["Temperature"]  # unchanged: same id, same row
    assert ids_before[before["Temperature"]] == document.chunks.get(key=after["Temperature"]).id
    assert after["Turning"] != before["Turning"]
    assert "Layer feed" not in after and "Grit" in after
    assert [text.split(": ", 1)[0].rsplit(" > ", 1)[-1] for text in HashEmbedder.embedded] == [
        "Turning",
        "Grit",
    ]
    assert [c.position for c in document.chunks.order_by("position")] == [0, 1, 2]


def test_chunk_keys_are_unique_for_repeated_passages() -> None:
    text = "## A\n\nSame words here.\n\n## A\n\nSame words here.\n"
    document, report = document_ingest(name="twice.md", data=text.encode())
    assert report.chunks == 2 and document.chunks.values("key").distinct().count() == 2


def test_pasted_text_is_keyed_by_title() -> None:
    first, report = document_ingest(text="Eggs keep five weeks in the fridge.", title="Eggs")
    assert report.created and first.kind == "text" and first.source_name == ""
    second, report = document_ingest(text="Eggs keep about five weeks cold.", title="Eggs")
    assert second.pk == first.pk and not report.created
    other, report = document_ingest(text="Another note.", title="Other")
    assert other.pk != first.pk and report.created


def test_title_comes_from_argument_content_or_file_name() -> None:
    named, _ = document_ingest(name="x.md", data=HANDBOOK.encode(), title="  My title ")
    assert named.title == "My title"
    from_file, _ = document_ingest(name="dir/brooding_notes.txt", data=b"Chicks need warmth.")
    assert from_file.title == "brooding notes"


def test_a_model_change_reindexes_and_never_mixes_vectors() -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    assert knowledge_retrieve("incubator temperature").passages
    HashEmbedder.model = "fake-hash-256-v2"  # the configured embedder changed
    # Chunks of the old model are not searched with the new model's question vectors.
    assert knowledge_retrieve("incubator temperature").passages == []
    HashEmbedder.embedded.clear()
    reports, failures = documents_reindex(stale_only=True)
    assert failures == [] and [r.document_id for r in reports] == [document.pk]
    assert reports[0].embedded == 3 and len(HashEmbedder.embedded) == 3
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {"fake-hash-256-v2"}
    best = knowledge_retrieve("incubator temperature").passages[0]
    assert best.heading_path.endswith("Temperature")
    assert documents_reindex(stale_only=True) == ([], [])  # nothing stale any more


def test_reindex_with_reembed_embeds_everything() -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    HashEmbedder.embedded.clear()
    report = document_index(document_id=document.pk, reembed=True)
    assert report.embedded == 3 and report.reused == 0


def test_an_embedder_failure_marks_the_document_failed() -> None:
    HashEmbedder.fail_with = KnowledgeUnavailable("the embeddings server is down")
    with pytest.raises(KnowledgeUnavailable):
        document_ingest(name="handbook.md", data=HANDBOOK.encode())
    document = Document.objects.get()
    assert document.status == Document.Status.FAILED
    assert document.error == "the embeddings server is down"
    assert knowledge_retrieve("temperature").passages == []  # failed documents are not searched
    HashEmbedder.fail_with = None
    reports, failures = documents_reindex(stale_only=True)
    assert failures == [] and reports[0].embedded == 3
    document.refresh_from_db()
    assert document.status == Document.Status.INDEXED and document.error == ""


def test_an_unexpected_error_is_wrapped_and_logged(caplog: Any) -> None:
    HashEmbedder.fail_with = RuntimeError("engine crashed")
    with pytest.raises(KnowledgeUnavailable) as caught:
        document_ingest(name="handbook.md", data=HANDBOOK.encode())
    assert caught.value.code == ErrorCode.KNOWLEDGE_UNAVAILABLE
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "indexing document" in caplog.text
    assert Document.objects.get().status == Document.Status.FAILED


def test_delete_removes_the_document_and_its_chunks() -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    document_delete(document_id=document.pk)
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert knowledge_retrieve("temperature").passages == []
    with pytest.raises(DocumentNotFound):
        document_delete(document_id=document.pk)
