"""Which embedder and which vector store serve this process: one cached instance each.

Both are import strings in ``settings.KNOWLEDGE_BACKENDS``, picked by
``settings.KNOWLEDGE["EMBEDDER"]`` and ``["STORE"]``, like the voice stages. Instances
are cached because they hold a loaded model, a matrix cache or a client's connections;
nothing is loaded at import time.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from knowledge.embeddings.base import Embedder
from knowledge.stores.base import KnowledgeStore

_instances: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _get(kind: str, setting: str) -> Any:
    name = str(settings.KNOWLEDGE[setting])
    key = (kind, name)
    instance = _instances.get(key)
    if instance is not None:
        return instance
    with _lock:
        if key not in _instances:
            backends: dict[str, str] = settings.KNOWLEDGE_BACKENDS[kind]
            if name not in backends:
                raise ImproperlyConfigured(
                    f"KNOWLEDGE[{setting!r}] is {name!r}; valid names: {', '.join(backends)}"
                )
            _instances[key] = import_string(backends[name])()
        return _instances[key]


def get_embedder() -> Embedder:
    return cast(Embedder, _get("embedder", "EMBEDDER"))


def get_store() -> KnowledgeStore:
    return cast(KnowledgeStore, _get("store", "STORE"))


def reset_knowledge_backends() -> None:
    """Drop cached instances (tests that change settings)."""
    with _lock:
        for instance in _instances.values():
            close = getattr(instance, "close", None)
            if close is not None:
                close()
        _instances.clear()
