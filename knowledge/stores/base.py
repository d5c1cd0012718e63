"""The vector store interface, and the passage shape every caller gets back.

The database holds every chunk with its vector (``knowledge.models``); a store is where
they are searched. The embedded store searches those rows themselves, so writing to it
is a no-op; Weaviate keeps a copy that services push to and remove from. Every search
names the embedding model: a store never ranks vectors of two models together.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Passage:
    """One retrieved passage; ``to_source()`` is PROTOCOL.md's ``sources`` item."""

    document_id: int
    title: str
    chunk_id: str
    text: str
    score: float
    heading_path: str = ""

    def to_source(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "title": self.title,
            "chunk_id": self.chunk_id,
            "text": self.text,
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True)
class IndexedChunk:
    """A chunk as a store keeps it (what a service pushes after indexing)."""

    document_id: int
    title: str
    key: str
    heading_path: str
    text: str
    vector: np.ndarray


class KnowledgeStore(ABC):
    #: Short backend name (``settings.KNOWLEDGE["STORE"]``).
    name: str = ""
    #: True when the store keeps its own copy of the chunks (services push to it).
    keeps_copy: bool = False

    def load(self) -> None:  # noqa: B027 - optional hook
        """Open clients or caches before first use (warm-up)."""

    def chunks_upsert(self, *, model: str, chunks: Sequence[IndexedChunk]) -> None:  # noqa: B027
        """Add or replace these chunks (same document and key: same object)."""

    def chunks_remove(self, *, model: str, document_id: int, keys: Sequence[str]) -> None:  # noqa: B027
        """Remove these chunks of one document."""

    def document_remove(self, *, model: str, document_id: int) -> None:  # noqa: B027
        """Remove every chunk of the document."""

    @abstractmethod
    def search(
        self, *, model: str, vector: np.ndarray, query: str, limit: int, timeout_s: float
    ) -> list[Passage]:
        """The ``limit`` passages most similar to ``vector`` (the embedded ``query``).

        Best first; ``score`` is the cosine similarity, plus a store's keyword bonus if
        it ranks by both. Raises ``KnowledgeUnavailable`` on failure or when the search
        takes longer than ``timeout_s``.
        """

    def is_empty(self, *, model: str) -> bool:
        """True when nothing can be found (lets a caller skip embedding the question)."""
        return False

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}
