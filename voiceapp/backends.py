"""Backends named by import strings in settings, built once per process.

The voice stages (``VOICE_BACKENDS``) and the knowledge base (``KNOWLEDGE_BACKENDS``) both
pick an implementation by name from a dict of import strings. Instances are cached
because they hold loaded models, matrices or connection pools; nothing is built at import.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


class BackendCache:
    """One instance per (kind, name), built on first use under a lock."""

    def __init__(self) -> None:
        self._instances: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, name: str, backends: dict[str, str], *, setting: str) -> Any:
        """The backend ``name`` of ``backends``; ``setting`` names the choice in errors."""
        key = (kind, name)
        instance = self._instances.get(key)
        if instance is not None:
            return instance
        with self._lock:
            if key not in self._instances:
                if name not in backends:
                    raise ImproperlyConfigured(
                        f"{setting} is {name!r}; valid names: {', '.join(backends)}"
                    )
                self._instances[key] = import_string(backends[name])()
            return self._instances[key]

    def clear(self) -> list[Any]:
        """Forget every instance (tests that change settings); returns them."""
        with self._lock:
            dropped = list(self._instances.values())
            self._instances.clear()
        return dropped
