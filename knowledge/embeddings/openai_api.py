"""Hosted embeddings through the OpenAI API or any OpenAI-compatible server (base URL).

The synchronous client is right here: embedding runs in worker threads and commands,
never on the event loop. Failures and timeouts become ``KnowledgeUnavailable`` with the
SDK's exception as the cause; the API key never appears in a message.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import openai
from django.conf import settings

from knowledge.embeddings.base import Embedder, normalised
from voiceapp.errors import KnowledgeUnavailable

#: Inputs per request: well under the API's limit of 2048, and a bounded request body.
BATCH = 128


class OpenAIEmbedder(Embedder):
    name = "openai"

    def __init__(self) -> None:
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        model = settings.KNOWLEDGE["OPENAI_EMBEDDING_MODEL"]
        dims = settings.KNOWLEDGE["OPENAI_EMBEDDING_DIMENSIONS"]
        return f"openai/{model}" + (f"@{dims}" if dims else "")

    def load(self) -> None:
        self._get_client()

    def _get_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                voice = settings.VOICE
                if not voice["OPENAI_API_KEY"]:
                    raise KnowledgeUnavailable("OPENAI_API_KEY is not set for OpenAI embeddings")
                self._client = openai.OpenAI(
                    api_key=voice["OPENAI_API_KEY"],
                    base_url=voice["OPENAI_BASE_URL"] or None,
                    timeout=voice["OPENAI_TIMEOUT_S"],
                    max_retries=1,
                )
            return self._client

    def _create(self, texts: list[str], timeout_s: float | None) -> np.ndarray:
        client = self._get_client()
        kwargs: dict[str, Any] = {
            "model": settings.KNOWLEDGE["OPENAI_EMBEDDING_MODEL"],
            "input": texts,
            "encoding_format": "float",
        }
        if settings.KNOWLEDGE["OPENAI_EMBEDDING_DIMENSIONS"]:
            kwargs["dimensions"] = settings.KNOWLEDGE["OPENAI_EMBEDDING_DIMENSIONS"]
        if timeout_s is not None:
            # A question inside a voice turn: no retry, and no longer than the turn allows.
            client = client.with_options(timeout=timeout_s, max_retries=0)
        try:
            response = client.embeddings.create(**kwargs)
        except openai.APITimeoutError as err:
            raise KnowledgeUnavailable("the embeddings request timed out") from err
        except openai.APIStatusError as err:
            raise KnowledgeUnavailable(
                f"the embeddings request failed: HTTP {err.status_code}"
            ) from err
        except openai.OpenAIError as err:
            raise KnowledgeUnavailable(
                f"the embeddings request failed: {type(err).__name__}"
            ) from err
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise KnowledgeUnavailable(
                f"the embeddings server returned {len(rows)} vectors for {len(texts)} inputs"
            )
        return normalised(np.array([row.embedding for row in rows], dtype=np.float32))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        parts = [
            self._create(list(texts[start : start + BATCH]), None)
            for start in range(0, len(texts), BATCH)
        ]
        return np.vstack(parts)

    def embed_query(self, text: str, *, timeout_s: float | None = None) -> np.ndarray:
        return self._create([text], timeout_s)[0]
