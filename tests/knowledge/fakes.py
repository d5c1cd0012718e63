"""A fast, deterministic stand-in for the embedder, for tests that are not about it.

Words are hashed into 256 buckets (a bag of words), so passages sharing words are close
and the ranking is predictable without loading a model. It counts what it embedded, so
tests can assert that only changed passages were embedded again, and it can fail.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from knowledge.embeddings.base import Embedder, normalised
from voiceapp.errors import KnowledgeUnavailable

DIMS = 256


class HashEmbedder(Embedder):
    name = "fake"
    #: Class-level so tests can switch the "model" the way a settings change would.
    model = "fake-hash-256"
    fail_with: Exception | None = None
    embedded: list[str] = []  # every passage text embedded, in order
    queries: list[str] = []

    @property
    def model_name(self) -> str:
        return type(self).model

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(DIMS, dtype=np.float32)
        for word in re.findall(r"\w+", text.casefold()):
            bucket = int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % DIMS
            vector[bucket] += 1.0
        if type(self).model != "fake-hash-256":  # "another model": other vectors
            vector = np.roll(vector, 7)
        return vector

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if type(self).fail_with is not None:
            raise type(self).fail_with
        type(self).embedded.extend(texts)
        if not texts:
            return np.zeros((0, DIMS), dtype=np.float32)
        return normalised(np.array([self._vector(text) for text in texts]))

    def embed_query(self, text: str, *, timeout_s: float | None = None) -> np.ndarray:
        if type(self).fail_with is not None:
            raise type(self).fail_with
        type(self).queries.append(text)
        return normalised(self._vector(text))


def reset_fake_embedder() -> None:
    HashEmbedder.model = "fake-hash-256"
    HashEmbedder.fail_with = None
    HashEmbedder.embedded = []
    HashEmbedder.queries = []


__all__ = ["DIMS", "HashEmbedder", "KnowledgeUnavailable", "reset_fake_embedder"]
