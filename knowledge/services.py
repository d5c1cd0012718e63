"""Writes: adding, indexing, re-indexing and deleting knowledge documents.

Plain functions with keyword-only arguments, shared by the REST API, the admin and the
management commands. Indexing embeds only the passages that are new or were embedded
by another model; unchanged passages keep their rows, vectors and chunk ids. Embedding
happens outside any transaction (it takes a while); the rows change in one.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from knowledge.chunking import ChunkDraft, chunks_split, normalise
from knowledge.extraction import HEADED_KINDS, ExtractedText, pasted_text, text_extract
from knowledge.models import Chunk, Document
from knowledge.registry import get_embedder, get_store
from knowledge.stores.base import IndexedChunk
from voiceapp.errors import AppError, DocumentNotFound, EmptyDocument, KnowledgeUnavailable

logger = logging.getLogger(__name__)

TITLE_MAX = 300


@dataclass(frozen=True)
class IndexReport:
    document_id: int
    title: str
    chunks: int
    embedded: int  # passages embedded now (new, changed, or of another model)
    reused: int  # passages kept with their vectors
    removed: int  # passages that left the document
    created: bool = False  # a new document (``document_ingest``)

    def summary(self) -> str:
        return (
            f"{self.chunks} passages ({self.embedded} embedded, {self.reused} unchanged, "
            f"{self.removed} removed)"
        )


def chunk_keys(*, document_id: int, drafts: Sequence[ChunkDraft]) -> list[str]:
    """Stable ids: the same passage under the same headings keeps its id across uploads.

    A passage that repeats word for word in one document gets its occurrence number
    mixed in, so keys stay unique.
    """
    seen: Counter[str] = Counter()
    keys = []
    for draft in drafts:
        base = f"{document_id}\x1f{draft.heading_path}\x1f{normalise(draft.text)}"
        occurrence = seen[base]
        seen[base] += 1
        material = base if occurrence == 0 else f"{base}\x1f{occurrence}"
        keys.append(hashlib.sha256(material.encode("utf-8")).hexdigest()[:32])
    return keys


def _title_for(extracted: ExtractedText, *, title: str, name: str) -> str:
    chosen = title.strip() or extracted.title.strip()
    if not chosen and name:
        chosen = PurePath(name).stem.replace("_", " ").replace("-", " ").strip()
    if not chosen:
        chosen = " ".join(extracted.text.split()[:8])
    return chosen[:TITLE_MAX]


def document_store(
    *,
    name: str = "",
    data: bytes | None = None,
    text: str | None = None,
    title: str = "",
    owner: AbstractBaseUser | None = None,
) -> tuple[Document, bool, bool]:
    """Extract a file (``name`` + ``data``) or pasted ``text`` and store it, unindexed.

    A file whose name matches an existing document's ``source_name`` (pasted text: the
    same title) updates that document. Returns ``(document, created, retitled)``.
    Raises ``UnsupportedFile``, ``EmptyDocument``, ``BadDocument`` or ``TooLarge`` before
    anything is stored.
    """
    if data is not None:
        extracted, source_name = text_extract(name=name, data=data), name[:500]
    else:
        extracted, source_name = pasted_text(text=text or ""), ""
    chosen_title = _title_for(extracted, title=title, name=name)
    digest = hashlib.sha256(extracted.text.encode("utf-8")).hexdigest()
    with transaction.atomic():
        same = Document.objects.select_for_update().order_by("id")
        if source_name:
            document = same.filter(source_name=source_name).first()
        else:
            document = same.filter(source_name="", title=chosen_title).first()
        created = document is None
        if document is None:
            document = Document(source_name=source_name, owner=owner)
        retitled = not created and document.title != chosen_title
        document.title = chosen_title
        document.kind = extracted.kind if data is not None else "text"
        document.text = extracted.text
        document.content_sha256 = digest
        if document.owner_id is None and owner is not None:
            document.owner = owner
        document.save()
    return document, created, retitled


def document_ingest(
    *,
    name: str = "",
    data: bytes | None = None,
    text: str | None = None,
    title: str = "",
    owner: AbstractBaseUser | None = None,
) -> tuple[Document, IndexReport]:
    """``document_store`` then ``document_index``: the document is searchable on return.

    Only the passages that changed since the last upload of the same document are
    embedded. Raises what ``document_store`` raises, and ``KnowledgeUnavailable`` when
    embedding or the store failed (the document is then stored with status ``failed``).
    """
    document, created, retitled = document_store(
        name=name, data=data, text=text, title=title, owner=owner
    )
    report = document_index(document_id=document.pk, push_all=retitled)
    document.refresh_from_db()
    return document, IndexReport(**{**report.__dict__, "created": created})


def _mark_failed(document_id: int, err: Exception) -> None:
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    Document.objects.filter(pk=document_id).update(
        status=Document.Status.FAILED, error=message[:2000], updated_at=timezone.now()
    )


def _drafts(document: Document) -> list[ChunkDraft]:
    options = settings.KNOWLEDGE
    return chunks_split(
        document.text,
        headed=document.kind in HEADED_KINDS or document.kind == "text",
        target_words=options["CHUNK_WORDS"],
        max_words=options["CHUNK_MAX_WORDS"],
        overlap_words=options["CHUNK_OVERLAP_WORDS"],
    )


def document_index(
    *, document_id: int, reembed: bool = False, push_all: bool = False
) -> IndexReport:
    """(Re-)index one document from its stored text.

    ``reembed`` embeds every passage again; otherwise only new passages and those of
    another embedding model are. ``push_all`` sends every passage to a store that keeps
    a copy (Weaviate), not only the embedded ones; a document whose last indexing failed
    is always pushed whole. Failures mark the document ``failed`` and raise
    ``KnowledgeUnavailable`` (or the ``AppError`` that stopped it).
    """
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        raise DocumentNotFound(f"document {document_id} does not exist")
    push_all = push_all or reembed or document.status != Document.Status.INDEXED
    try:
        return _index(document, reembed=reembed, push_all=push_all)
    except AppError as err:
        _mark_failed(document_id, err)
        raise
    except Exception as err:
        logger.exception("indexing document %s failed", document_id)
        _mark_failed(document_id, err)
        raise KnowledgeUnavailable(f"indexing failed: {type(err).__name__}") from err


def _index(document: Document, *, reembed: bool, push_all: bool) -> IndexReport:
    drafts = _drafts(document)
    if not drafts:
        raise EmptyDocument("the document has no text to index")
    keys = chunk_keys(document_id=document.pk, drafts=drafts)
    embedder = get_embedder()
    model = embedder.model_name
    existing = {
        chunk.key: chunk
        for chunk in document.chunks.only("id", "key", "embedding_model", "position")
    }
    keep = {
        key
        for key in keys
        if not reembed and key in existing and existing[key].embedding_model == model
    }
    fresh = [(key, draft) for key, draft in zip(keys, drafts, strict=True) if key not in keep]
    vectors = embedder.embed_passages([draft.embedding_text() for _, draft in fresh])
    removed = [key for key in existing if key not in set(keys)]

    with transaction.atomic():
        locked = Document.objects.select_for_update().get(pk=document.pk)
        Chunk.objects.filter(document=locked, key__in=removed).delete()
        Chunk.objects.filter(document=locked, key__in=[key for key, _ in fresh]).delete()
        moved = []
        for key, draft in zip(keys, drafts, strict=True):
            if key in keep and existing[key].position != draft.position:
                existing[key].position = draft.position
                moved.append(existing[key])
        Chunk.objects.bulk_update(moved, ["position"], batch_size=500)
        Chunk.objects.bulk_create(
            [
                Chunk(
                    document=locked,
                    key=key,
                    position=draft.position,
                    heading_path=draft.heading_path[:500],
                    text=draft.text,
                    embedding=vector.astype("<f4").tobytes(),
                    embedding_model=model,
                    dims=int(vector.shape[0]),
                )
                for (key, draft), vector in zip(fresh, vectors, strict=True)
            ],
            batch_size=500,
        )
        locked.status = Document.Status.INDEXED
        locked.error = ""
        locked.embedding_model = model
        locked.indexed_at = timezone.now()
        locked.save(
            update_fields=["status", "error", "embedding_model", "indexed_at", "updated_at"]
        )

    store = get_store()
    if store.keeps_copy:
        pushed = _indexed_chunks(
            locked, model=model, keys=None if push_all else [k for k, _ in fresh]
        )
        if removed:
            store.chunks_remove(model=model, document_id=locked.pk, keys=removed)
        store.chunks_upsert(model=model, chunks=pushed)
    report = IndexReport(
        document_id=locked.pk,
        title=locked.title,
        chunks=len(keys),
        embedded=len(fresh),
        reused=len(keep),
        removed=len(removed),
    )
    logger.info("indexed document %s %r: %s", locked.pk, locked.title, report.summary())
    return report


def _indexed_chunks(
    document: Document, *, model: str, keys: Sequence[str] | None
) -> list[IndexedChunk]:
    rows = Chunk.objects.filter(document=document, embedding_model=model)
    if keys is not None:
        rows = rows.filter(key__in=keys)
    return [
        IndexedChunk(
            document_id=document.pk,
            title=document.title,
            key=chunk.key,
            heading_path=chunk.heading_path,
            text=chunk.text,
            vector=np.frombuffer(bytes(chunk.embedding), dtype="<f4"),
        )
        for chunk in rows.order_by("position")
    ]


def document_delete(*, document_id: int) -> None:
    """Delete a document; its passages leave the store first.

    When the store cannot remove them (Weaviate unreachable) the document stays and
    ``KnowledgeUnavailable`` is raised: deleting only the rows would leave passages that
    are still retrieved.
    """
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        raise DocumentNotFound(f"document {document_id} does not exist")
    store = get_store()
    if store.keeps_copy and document.embedding_model:
        store.document_remove(model=document.embedding_model, document_id=document.pk)
    document.delete()
    logger.info("deleted document %s %r", document_id, document.title)


def documents_reindex(
    *, document_ids: Sequence[int] | None = None, stale_only: bool = False, reembed: bool = False
) -> tuple[list[IndexReport], list[tuple[int, AppError]]]:
    """Re-index documents: all, these ids, or (``stale_only``) those not indexed with the
    current embedding model (a model change, or a failed indexing).

    Returns the reports and the failures; one failure does not stop the others.
    """
    documents = Document.objects.order_by("id")
    if document_ids is not None:
        documents = documents.filter(pk__in=list(document_ids))
    if stale_only:
        model = get_embedder().model_name
        documents = documents.exclude(status=Document.Status.INDEXED, embedding_model=model)
    reports, failures = [], []
    for document_id in documents.values_list("id", flat=True):
        try:
            reports.append(document_index(document_id=document_id, reembed=reembed, push_all=True))
        except AppError as err:
            failures.append((document_id, err))
    return reports, failures
