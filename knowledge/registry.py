"""Which embedder and which vector store serve this process: one cached instance each.

Both are import strings in ``settings.KNOWLEDGE_BACKENDS``, picked by
``settings.KNOWLEDGE["EMBEDDER"]`` and ``["STORE"]``, like the voice stages. Instances
are cached because they hold a loaded model, a matrix cache or a client's connections;
nothing is loaded at import time.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings

from knowledge.embeddings.base import Embedder
from knowledge.stores.base import KnowledgeStore
from voiceapp.backends import BackendCache

_backends = BackendCache()


def _get(kind: str, setting: str) -> Any:
    name = str(settings.KNOWLEDGE[setting])
    return _backends.get(
        kind, name, settings.KNOWLEDGE_BACKENDS[kind], setting=f"KNOWLEDGE[{setting!r}]"
    )


def get_embedder() -> Embedder:
    return cast(Embedder, _get("embedder", "EMBEDDER"))


def get_store() -> KnowledgeStore:
    return cast(KnowledgeStore, _get("store", "STORE"))


def reset_knowledge_backends() -> None:
    """Drop cached instances (tests that change settings), closing their clients."""
    for instance in _backends.clear():
        close = getattr(instance, "close", None)
        if close is not None:
            close()
