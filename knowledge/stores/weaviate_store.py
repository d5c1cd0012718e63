"""Weaviate as the vector store, through ``weaviate-client`` v4 with our own vectors.

- One collection per embedding model (``VoiceappChunk_<model>``), created on first use,
  without a vectorizer: the vectors come from our embedder, so vectors of two models can
  never meet in one index. Cosine distance; score = 1 - distance.
- Multi-tenancy with one tenant per deployment (``WEAVIATE_TENANT``): several
  installations can share a Weaviate server without seeing each other's documents.
- Batch import over gRPC (``insert_many``) with deterministic object ids (uuid5 of
  document and chunk key), so pushing a chunk again replaces it.
- Every call has a time limit. The client's own timeouts are set, and each call also
  runs under a deadline in a daemon thread, because the client retries an unavailable
  server with sleeps of 1, 2, 4 ... seconds (a daemon thread, so such a retry never
  holds up the process at exit). After a failure, searches fail at once for
  ``WEAVIATE_RETRY_AFTER_S`` rather than making every turn wait.

The init checks are skipped on connect: they ask PyPI for the latest client version,
which a production server must not depend on.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
from django.conf import settings

from knowledge.stores.base import IndexedChunk, KnowledgeStore, Passage
from voiceapp.errors import KnowledgeUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
VECTOR_NAME = "default"
#: Objects per gRPC batch request: well below the 10 MB default message size.
BATCH = 200
#: Namespace of the object ids (uuid5 of "document_id/key").
NAMESPACE = uuid.UUID("6f0d7f5e-2b7c-4c55-9f55-4b1f3b0c8a21")
PROPERTIES = ("document_id", "chunk_id", "title", "heading_path", "text")


def object_id(document_id: int, key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{document_id}/{key}")


def collection_name(model: str) -> str:
    """The model's collection: a valid class name (``^[A-Z][_0-9A-Za-z]*$``)."""
    base = settings.KNOWLEDGE["WEAVIATE_COLLECTION"]
    slug = re.sub(r"[^0-9A-Za-z]+", "_", model).strip("_")
    name = f"{base}_{slug}"
    return name[:1].upper() + name[1:]


class WeaviateStore(KnowledgeStore):
    name = "weaviate"
    keeps_copy = True

    def __init__(self) -> None:
        self._client: Any = None
        self._ready: set[str] = set()  # collections known to exist with our tenant
        self._lock = threading.Lock()
        self._down_until = 0.0

    # --- plumbing -------------------------------------------------------------------------

    @property
    def tenant(self) -> str:
        return str(settings.KNOWLEDGE["WEAVIATE_TENANT"])

    def _call(self, what: str, fn: Callable[[], T], timeout_s: float) -> T:
        """``fn()`` under a deadline; every failure is ``KnowledgeUnavailable``."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as err:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(err)

        threading.Thread(target=run, name=f"weaviate {what}", daemon=True).start()
        try:
            result = future.result(timeout=max(0.001, timeout_s))
        except FutureTimeout as err:
            self._failed()
            raise KnowledgeUnavailable(
                f"Weaviate did not answer {what} within {timeout_s:.2f} s"
            ) from err
        except KnowledgeUnavailable:
            self._failed()
            raise
        except Exception as err:
            self._failed()
            logger.warning("Weaviate %s failed: %s: %s", what, type(err).__name__, err)
            raise KnowledgeUnavailable(
                f"Weaviate {what} failed: {type(err).__name__}: {_short(err)}"
            ) from err
        self._down_until = 0.0
        return result

    def _failed(self) -> None:
        self._down_until = time.monotonic() + settings.KNOWLEDGE["WEAVIATE_RETRY_AFTER_S"]

    def _connected(self) -> Any:
        """The client, connected on first use (runs inside ``_call``)."""
        with self._lock:
            if self._client is None:
                self._client = _connect()
            return self._client

    def _collection(self, model: str) -> Any:
        """The model's collection for our tenant, created on demand (inside ``_call``)."""
        client = self._connected()
        name = collection_name(model)
        collection = client.collections.use(name)
        if name not in self._ready:
            if not client.collections.exists(name):
                try:
                    _create_collection(client, name)
                except Exception:
                    if not client.collections.exists(name):  # not another process's race
                        raise
            if not collection.tenants.exists(self.tenant):
                from weaviate.classes.tenants import Tenant

                collection.tenants.create([Tenant(name=self.tenant)])
            self._ready.add(name)
        return collection.with_tenant(self.tenant)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception as err:  # noqa: BLE001 - closing a broken client
                    logger.debug("closing the Weaviate client: %s", err)
                self._client = None
            self._ready.clear()

    # --- the interface --------------------------------------------------------------------

    def load(self) -> None:
        from knowledge.registry import get_embedder

        model = get_embedder().model_name
        self._call("connect", lambda: self._collection(model), _write_timeout())

    def chunks_upsert(self, *, model: str, chunks: Sequence[IndexedChunk]) -> None:
        if not chunks:
            return

        def insert() -> None:
            from weaviate.classes.data import DataObject

            collection = self._collection(model)
            for start in range(0, len(chunks), BATCH):
                objects = [
                    DataObject(
                        uuid=object_id(chunk.document_id, chunk.key),
                        properties={
                            "document_id": chunk.document_id,
                            "chunk_id": chunk.key,
                            "title": chunk.title,
                            "heading_path": chunk.heading_path,
                            "text": chunk.text,
                        },
                        vector={VECTOR_NAME: chunk.vector.astype(np.float32).tolist()},
                    )
                    for chunk in chunks[start : start + BATCH]
                ]
                result = collection.data.insert_many(objects)
                if result.has_errors:
                    first = next(iter(result.errors.values()))
                    raise KnowledgeUnavailable(
                        f"Weaviate refused {len(result.errors)} of {len(objects)} "
                        f"objects: {first.message}"
                    )

        self._call(f"import of {len(chunks)} chunks", insert, _write_timeout(len(chunks)))

    def chunks_remove(self, *, model: str, document_id: int, keys: Sequence[str]) -> None:
        if not keys:
            return

        def remove() -> None:
            collection = self._collection(model)
            for key in keys:
                collection.data.delete_by_id(object_id(document_id, key))

        self._call(f"deletion of {len(keys)} chunks", remove, _write_timeout(len(keys)))

    def document_remove(self, *, model: str, document_id: int) -> None:
        def remove() -> None:
            from weaviate.classes.query import Filter

            collection = self._collection(model)
            where = Filter.by_property("document_id").equal(document_id)
            for _ in range(1000):  # a server caps one deletion at QUERY_MAXIMUM_RESULTS
                result = collection.data.delete_many(where=where)
                if result.failed:
                    raise KnowledgeUnavailable(
                        f"Weaviate could not delete {result.failed} chunks of document "
                        f"{document_id}"
                    )
                if not result.successful:
                    return

        self._call(f"deletion of document {document_id}", remove, _write_timeout())

    def search(
        self, *, model: str, vector: np.ndarray, query: str, limit: int, timeout_s: float
    ) -> list[Passage]:
        if time.monotonic() < self._down_until:
            raise KnowledgeUnavailable("Weaviate failed moments ago; not retried yet")

        def query() -> list[Passage]:
            from weaviate.classes.query import MetadataQuery

            response = self._collection(model).query.near_vector(
                near_vector=np.asarray(vector, dtype=np.float32).tolist(),
                target_vector=VECTOR_NAME,
                limit=limit,
                return_metadata=MetadataQuery(distance=True),
                return_properties=list(PROPERTIES),
            )
            return [_passage(item) for item in response.objects]

        return self._call("search", query, timeout_s)

    def describe(self) -> dict[str, Any]:
        options = settings.KNOWLEDGE
        return {
            "name": self.name,
            "url": options["WEAVIATE_URL"],
            "collection": options["WEAVIATE_COLLECTION"],
            "tenant": self.tenant,
        }


def _passage(item: Any) -> Passage:
    props = item.properties
    distance = item.metadata.distance
    return Passage(
        document_id=int(props.get("document_id") or 0),
        title=str(props.get("title") or ""),
        chunk_id=str(props.get("chunk_id") or ""),
        text=str(props.get("text") or ""),
        heading_path=str(props.get("heading_path") or ""),
        score=1.0 - float(distance) if distance is not None else 0.0,
    )


def _write_timeout(count: int = 0) -> float:
    """Connecting and writing: the configured limit, more for a large import."""
    return float(settings.KNOWLEDGE["WEAVIATE_TIMEOUT_S"]) * (1 + count // 1000)


def _short(err: Exception, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _connect() -> Any:
    import weaviate
    from weaviate.classes.init import AdditionalConfig, Auth, Timeout

    options = settings.KNOWLEDGE
    url = urlsplit(options["WEAVIATE_URL"])
    secure = url.scheme == "https"
    host = url.hostname or "127.0.0.1"
    timeout = max(1, round(options["WEAVIATE_TIMEOUT_S"]))
    return weaviate.connect_to_custom(
        http_host=host,
        http_port=url.port or (443 if secure else 80),
        http_secure=secure,
        grpc_host=options["WEAVIATE_GRPC_HOST"] or host,
        grpc_port=options["WEAVIATE_GRPC_PORT"],
        grpc_secure=secure,
        auth_credentials=(
            Auth.api_key(options["WEAVIATE_API_KEY"]) if options["WEAVIATE_API_KEY"] else None
        ),
        additional_config=AdditionalConfig(
            timeout=Timeout(init=timeout, query=timeout, insert=timeout)
        ),
        skip_init_checks=True,
    )


def _create_collection(client: Any, name: str) -> None:
    from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances

    client.collections.create(
        name,
        description="Voiceapp knowledge-base passages (vectors from the app's embedder).",
        properties=[
            Property(name="document_id", data_type=DataType.INT),
            Property(
                name="chunk_id",
                data_type=DataType.TEXT,
                tokenization=Tokenization.FIELD,
                index_searchable=False,
            ),
            Property(name="title", data_type=DataType.TEXT),
            Property(name="heading_path", data_type=DataType.TEXT),
            Property(name="text", data_type=DataType.TEXT),
        ],
        vector_config=Configure.Vectors.self_provided(
            name=VECTOR_NAME,
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE),
        ),
        multi_tenancy_config=Configure.multi_tenancy(enabled=True),
    )
