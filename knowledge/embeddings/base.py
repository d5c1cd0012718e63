"""The embedder interface.

Synchronous on purpose: embedding runs in services (a request thread, a management
command, a Celery worker), never on the event loop; async callers go through
``knowledge.retrieval.knowledge_retrieve_async``. Vectors come back L2-normalised, so a
dot product is the cosine similarity every store ranks by.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np


class Embedder(ABC):
    #: Short backend name (``settings.KNOWLEDGE["EMBEDDER"]``).
    name: str = ""
    #: Passages scoring below this are not relevant (when ``MIN_SCORE`` is unset): each
    #: model has its own similarity scale.
    default_min_score: float = 0.0

    @property
    @abstractmethod
    def model_name(self) -> str:
        """Recorded with every chunk: vectors of two models are never searched together."""

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights or clients. Called once per process before first use (warm-up)."""

    @abstractmethod
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dims)`` float32 vectors of document passages."""

    @abstractmethod
    def embed_query(self, text: str, *, timeout_s: float | None = None) -> np.ndarray:
        """``(dims,)`` float32 vector of a question, within ``timeout_s`` where it can wait."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_name}


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as contiguous float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)
