"""The embedded store: the chunk rows in the database, ranked by cosine similarity in numpy.

Each process keeps the vectors of the current model as one float32 matrix, so a search
is one matrix-vector product (about a millisecond for 10 000 chunks of 384 values), plus
a small BM25 keyword bonus from an in-memory index (``knowledge.keywords``). The
matrix is reloaded only when the indexed documents changed: every search first reads a
fingerprint, the number of indexed documents and their latest ``updated_at``, in one
small aggregate query. Indexing a document saves it (``updated_at`` moves on) and
removing one lowers the count, so any change, from any process, is seen by the next
search without signals or shared memory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Count, Max

from knowledge.keywords import KeywordIndex
from knowledge.models import Chunk, Document
from knowledge.stores.base import KnowledgeStore, Passage


@dataclass
class _Matrix:
    fingerprint: tuple[Any, ...]
    vectors: np.ndarray
    document_ids: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    heading_paths: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    keywords: KeywordIndex | None = None


def _fingerprint() -> tuple[Any, ...]:
    state = Document.objects.filter(status=Document.Status.INDEXED).aggregate(
        n=Count("id"), latest=Max("updated_at")
    )
    return (state["n"], state["latest"])


def _load(model: str, fingerprint: tuple[Any, ...]) -> _Matrix:
    rows = (
        Chunk.objects.filter(document__status=Document.Status.INDEXED, embedding_model=model)
        .order_by("document_id", "position")
        .values_list("document_id", "key", "heading_path", "text", "embedding", "document__title")
    )
    matrix = _Matrix(fingerprint=fingerprint, vectors=np.zeros((0, 0), dtype=np.float32))
    vectors: list[np.ndarray] = []
    for document_id, key, heading_path, text, embedding, title in rows.iterator(chunk_size=2000):
        vector = np.frombuffer(bytes(embedding), dtype="<f4")
        if vectors and vector.shape != vectors[0].shape:
            continue  # a corrupt row; one model's vectors all have the same length
        vectors.append(vector)
        matrix.document_ids.append(document_id)
        matrix.keys.append(key)
        matrix.heading_paths.append(heading_path)
        matrix.texts.append(text)
        matrix.titles.append(title)
    if vectors:
        matrix.vectors = np.ascontiguousarray(np.vstack(vectors), dtype=np.float32)
    matrix.keywords = KeywordIndex(
        [f"{path}: {text}" for path, text in zip(matrix.heading_paths, matrix.texts, strict=True)]
    )
    return matrix


class EmbeddedStore(KnowledgeStore):
    name = "embedded"
    keeps_copy = False

    def __init__(self) -> None:
        self._matrices: dict[str, _Matrix] = {}
        self._lock = threading.Lock()
        # ``is_empty`` then ``search`` within one retrieval read the fingerprint once.
        self._checked = threading.local()

    def _matrix(self, model: str) -> _Matrix:
        fingerprint = _fingerprint()
        matrix = self._matrices.get(model)
        if matrix is not None and matrix.fingerprint == fingerprint:
            return matrix
        with self._lock:
            matrix = self._matrices.get(model)
            if matrix is None or matrix.fingerprint != fingerprint:
                # Only the current model's matrix is worth its memory.
                self._matrices = {model: _load(model, fingerprint)}
            return self._matrices[model]

    def load(self) -> None:
        from knowledge.registry import get_embedder

        self._matrix(get_embedder().model_name)

    def is_empty(self, *, model: str) -> bool:
        matrix = self._matrix(model)
        self._checked.matrix = (model, matrix)
        return len(matrix.keys) == 0

    def search(
        self, *, model: str, vector: np.ndarray, query: str, limit: int, timeout_s: float
    ) -> list[Passage]:
        checked = getattr(self._checked, "matrix", None)
        self._checked.matrix = None
        matrix = checked[1] if checked and checked[0] == model else self._matrix(model)
        count = len(matrix.keys)
        if count == 0 or limit <= 0:
            return []
        if matrix.vectors.shape[1] != vector.shape[-1]:
            return []  # the question was embedded by another model than the chunks
        # einsum, not ``@``: ``@`` goes to OpenBLAS, whose threads, fighting the models for
        # two busy cores, made this 10 000 x 384 product 3-20x slower than one plain loop.
        scores = np.einsum("ij,j->i", matrix.vectors, np.asarray(vector, dtype=np.float32))
        if matrix.keywords is not None:
            scores = scores + matrix.keywords.bonus(query, settings.KNOWLEDGE["KEYWORD_WEIGHT"])
        if count > limit:
            best = np.argpartition(-scores, limit)[:limit]
            best = best[np.argsort(-scores[best], kind="stable")]
        else:
            best = np.argsort(-scores, kind="stable")
        return [
            Passage(
                document_id=matrix.document_ids[i],
                title=matrix.titles[i],
                chunk_id=matrix.keys[i],
                text=matrix.texts[i],
                score=float(scores[i]),
                heading_path=matrix.heading_paths[i],
            )
            for i in best.tolist()
        ]

    def describe(self) -> dict[str, Any]:
        cached = {model: len(matrix.keys) for model, matrix in self._matrices.items()}
        return {"name": self.name, "cached_chunks": cached}
