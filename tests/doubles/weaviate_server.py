"""A local stand-in for a Weaviate server, faithful where our store depends on it.

A real Weaviate was not available in the test environment, so this double speaks the
two protocols the real ``weaviate-client`` v4 uses, on 127.0.0.1:

- REST (``/v1``): ``GET /meta``, ``GET/POST /schema`` (collection exists / create),
  ``HEAD/POST /schema/{class}/tenants`` (tenant exists / create), ``DELETE
  /objects/{class}/{id}?tenant=`` and the ``.well-known`` probes;
- gRPC (``weaviate.v1.Weaviate``), with the protobuf stubs shipped inside the client
  package: ``BatchObjects`` (batch import), ``Search`` (near-vector with cosine
  distance, requested properties and metadata), ``BatchDelete`` (filter on a property)
  and ``TenantsGet``.

It keeps what a server would check: a class must exist, a multi-tenant class needs an
existing tenant on every data call, vectors in one index must have one length. It
records every call, and fails on demand: an HTTP status or gRPC code, or a delay (a
server that hangs) per REST path prefix or gRPC method.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import numpy as np
from google.protobuf.json_format import MessageToDict
from weaviate.proto.v1 import (
    base_pb2,
    batch_delete_pb2,
    batch_pb2,
    properties_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

VERSION = "1.28.4"  # the image docker-compose.yml runs


@dataclass
class Failure:
    """How to fail a call: an HTTP status (REST) or gRPC code, after ``delay`` seconds."""

    status: int = 500
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    delay: float = 0.0
    message: str = "the double was told to fail"
    times: int | None = None  # fail this many calls, then answer normally (None: always)


@dataclass
class StoredObject:
    uuid: str
    properties: dict[str, Any]
    vectors: dict[str, np.ndarray]  # vector name ("" for the unnamed vector) -> vector


@dataclass
class Collection:
    schema: dict[str, Any]
    tenants: set[str] = field(default_factory=set)
    # tenant ("" when multi-tenancy is off) -> uuid -> object
    objects: dict[str, dict[str, StoredObject]] = field(default_factory=dict)

    @property
    def multi_tenant(self) -> bool:
        return bool(self.schema.get("multiTenancyConfig", {}).get("enabled"))

    def data_type(self, name: str) -> str:
        for prop in self.schema.get("properties", []):
            if prop["name"] == name:
                return str(prop["dataType"][0])
        return "text"


class _DoubleError(Exception):
    def __init__(self, status: int, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class WeaviateDouble:
    def __init__(self) -> None:
        self.collections: dict[str, Collection] = {}
        self.calls: list[str] = []  # "GET /v1/meta", "grpc Search", ...
        self.rest_failures: dict[str, Failure] = {}  # "METHOD /v1/path-prefix" -> failure
        self.grpc_failures: dict[str, Failure] = {}  # gRPC method name -> failure
        self._lock = threading.RLock()
        self._released = threading.Event()  # wakes delayed calls when the double stops
        self._http: ThreadingHTTPServer | None = None
        self._grpc: grpc.Server | None = None
        self.http_port = 0
        self.grpc_port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # --- helpers for tests ----------------------------------------------------------------

    def objects(self, collection: str, tenant: str = "") -> dict[str, StoredObject]:
        with self._lock:
            found = self.collections.get(collection)
            return dict(found.objects.get(tenant, {})) if found else {}

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call == kind)

    def _failure(self, failures: dict[str, Failure], key: str) -> Failure | None:
        for prefix, failure in failures.items():
            if key.startswith(prefix):
                if failure.times is not None:
                    if failure.times <= 0:
                        continue
                    failure.times -= 1
                return failure
        return None

    def _wait(self, failure: Failure) -> None:
        if failure.delay:
            self._released.wait(failure.delay)

    # --- schema and tenants (REST) --------------------------------------------------------

    def _collection(self, name: str) -> Collection:
        found = self.collections.get(name[:1].upper() + name[1:])
        if found is None:
            raise _DoubleError(404, grpc.StatusCode.NOT_FOUND, f"class {name!r} not found")
        return found

    def _tenant(self, collection: Collection, tenant: str) -> str:
        name = collection.schema["class"]
        if collection.multi_tenant:
            if not tenant:
                raise _DoubleError(
                    422,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"class {name} has multi-tenancy enabled, but request was without tenant",
                )
            if tenant not in collection.tenants:
                raise _DoubleError(422, grpc.StatusCode.NOT_FOUND, f'tenant not found: "{tenant}"')
            return tenant
        if tenant:
            raise _DoubleError(
                422,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"class {name} has multi-tenancy disabled, but request was with tenant",
            )
        return ""

    def rest(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [part for part in path.split("/") if part]
        if parts[:1] != ["v1"]:
            return 404, {"error": [{"message": "not found"}]}
        parts = parts[1:]
        with self._lock:
            if parts == ["meta"] and method == "GET":
                return 200, {
                    "hostname": "http://[::]:8080",
                    "version": VERSION,
                    "modules": {},
                    "grpcMaxMessageSize": 104858000,
                }
            if parts == [".well-known", "ready"]:
                return 200, None
            if parts == [".well-known", "openid-configuration"]:
                return 404, None
            if parts == ["schema"] and method == "POST":
                return self._class_create(body)
            if parts[:1] == ["schema"] and len(parts) == 2 and method == "GET":
                return 200, self._collection(parts[1]).schema
            if parts[:1] == ["schema"] and len(parts) >= 3 and parts[2] == "tenants":
                collection = self._collection(parts[1])
                if not collection.multi_tenant:
                    raise _DoubleError(
                        422, grpc.StatusCode.INVALID_ARGUMENT, "multi-tenancy is not enabled"
                    )
                if len(parts) == 4 and method in ("HEAD", "GET"):
                    if parts[3] in collection.tenants:
                        return 200, {"name": parts[3], "activityStatus": "HOT"}
                    return 404, None
                if len(parts) == 3 and method == "POST":
                    for tenant in body:
                        collection.tenants.add(tenant["name"])
                        collection.objects.setdefault(tenant["name"], {})
                    return 200, body
                if len(parts) == 3 and method == "GET":
                    return 200, [{"name": t, "activityStatus": "HOT"} for t in collection.tenants]
            if parts[:1] == ["objects"] and len(parts) == 3 and method == "DELETE":
                collection = self._collection(parts[1])
                tenant = self._tenant(collection, query.get("tenant", ""))
                removed = collection.objects.get(tenant, {}).pop(parts[2], None)
                return (204, None) if removed else (404, None)
        return 405, {"error": [{"message": f"{method} {path} is not supported by the double"}]}

    def _class_create(self, body: dict[str, Any]) -> tuple[int, Any]:
        name = str(body.get("class", ""))
        name = name[:1].upper() + name[1:]
        if not name or not name.replace("_", "").isalnum():
            return 422, {"error": [{"message": f"invalid class name {name!r}"}]}
        if name in self.collections:
            return 422, {"error": [{"message": f'class name "{name}" already exists'}]}
        schema = {**body, "class": name}
        self.collections[name] = Collection(schema=schema)
        if not self.collections[name].multi_tenant:
            self.collections[name].objects[""] = {}
        return 200, schema

    # --- data (gRPC) ----------------------------------------------------------------------

    def batch_objects(self, request: batch_pb2.BatchObjectsRequest) -> batch_pb2.BatchObjectsReply:
        started = time.perf_counter()
        errors = []
        with self._lock:
            for index, obj in enumerate(request.objects):
                try:
                    self._insert(obj)
                except _DoubleError as err:
                    errors.append(
                        batch_pb2.BatchObjectsReply.BatchError(index=index, error=err.message)
                    )
        return batch_pb2.BatchObjectsReply(took=time.perf_counter() - started, errors=errors)

    def _insert(self, obj: batch_pb2.BatchObject) -> None:
        collection = self._collection(obj.collection)
        tenant = self._tenant(collection, obj.tenant)
        vectors: dict[str, np.ndarray] = {}
        if obj.vector_bytes:
            vectors[""] = np.frombuffer(obj.vector_bytes, dtype="<f4").copy()
        for named in obj.vectors:
            vectors[named.name or "default"] = np.frombuffer(named.vector_bytes, dtype="<f4").copy()
        for name, vector in vectors.items():
            for other in collection.objects[tenant].values():
                known = other.vectors.get(name)
                if known is not None and known.shape != vector.shape and other.uuid != obj.uuid:
                    raise _DoubleError(
                        422,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"new node has a vector with length {vector.shape[0]}. "
                        f"Existing nodes have vectors with length {known.shape[0]}",
                    )
                break
        props = (
            MessageToDict(obj.properties.non_ref_properties) if obj.HasField("properties") else {}
        )
        for name, value in list(props.items()):
            if collection.data_type(name) == "int" and isinstance(value, float):
                props[name] = int(value)
        collection.objects[tenant][obj.uuid] = StoredObject(
            uuid=obj.uuid, properties=props, vectors=vectors
        )

    def search(self, request: search_get_pb2.SearchRequest) -> search_get_pb2.SearchReply:
        started = time.perf_counter()
        with self._lock:
            collection = self._collection(request.collection)
            tenant = self._tenant(collection, request.tenant)
            if not request.HasField("near_vector"):
                raise _DoubleError(
                    400, grpc.StatusCode.UNIMPLEMENTED, "the double only does near_vector"
                )
            near = request.near_vector
            raw = near.vector_bytes or (near.vectors[0].vector_bytes if near.vectors else b"")
            query = np.frombuffer(raw, dtype="<f4")
            targets = list(near.targets.target_vectors) or list(near.target_vectors)
            target = targets[0] if targets else ""
            scored = []
            for stored in collection.objects[tenant].values():
                vector = stored.vectors.get(target)
                if vector is None and not target and len(stored.vectors) == 1:
                    vector = next(iter(stored.vectors.values()))
                if vector is None:
                    continue
                if vector.shape != query.shape:
                    raise _DoubleError(
                        400,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"vector search: query vector has length {query.shape[0]}, "
                        f"the index has {vector.shape[0]}",
                    )
                cosine = float(vector @ query / (np.linalg.norm(vector) * np.linalg.norm(query)))
                scored.append((1.0 - cosine, stored))
            scored.sort(key=lambda item: item[0])
            limit = request.limit or 10
            wanted = list(request.properties.non_ref_properties)
            results = [
                search_get_pb2.SearchResult(
                    properties=search_get_pb2.PropertiesResult(
                        target_collection=collection.schema["class"],
                        non_ref_props=self._properties(collection, stored, wanted),
                    ),
                    metadata=search_get_pb2.MetadataResult(
                        id_as_bytes=uuid.UUID(stored.uuid).bytes,
                        distance=distance if request.metadata.distance else 0.0,
                        distance_present=bool(request.metadata.distance),
                    ),
                )
                for distance, stored in scored[:limit]
            ]
        return search_get_pb2.SearchReply(took=time.perf_counter() - started, results=results)

    def _properties(
        self, collection: Collection, stored: StoredObject, wanted: list[str]
    ) -> properties_pb2.Properties:
        fields = {}
        for name, value in stored.properties.items():
            if wanted and name not in wanted:
                continue
            kind = collection.data_type(name)
            if kind == "int":
                fields[name] = properties_pb2.Value(int_value=int(value))
            elif kind == "number":
                fields[name] = properties_pb2.Value(number_value=float(value))
            elif kind == "boolean":
                fields[name] = properties_pb2.Value(bool_value=bool(value))
            else:
                fields[name] = properties_pb2.Value(text_value=str(value))
        return properties_pb2.Properties(fields=fields)

    def batch_delete(
        self, request: batch_delete_pb2.BatchDeleteRequest
    ) -> batch_delete_pb2.BatchDeleteReply:
        started = time.perf_counter()
        with self._lock:
            collection = self._collection(request.collection)
            tenant = self._tenant(collection, request.tenant)
            stored = collection.objects[tenant]
            matches = [key for key, obj in stored.items() if _matches(request.filters, obj)]
            if not request.dry_run:
                for key in matches:
                    del stored[key]
        return batch_delete_pb2.BatchDeleteReply(
            took=time.perf_counter() - started,
            matches=len(matches),
            successful=0 if request.dry_run else len(matches),
            failed=0,
            objects=[
                batch_delete_pb2.BatchDeleteObject(uuid=uuid.UUID(key).bytes, successful=True)
                for key in matches
            ]
            if request.verbose
            else [],
        )

    def tenants_get(self, request: tenants_pb2.TenantsGetRequest) -> tenants_pb2.TenantsGetReply:
        with self._lock:
            collection = self._collection(request.collection)
            return tenants_pb2.TenantsGetReply(
                tenants=[
                    tenants_pb2.Tenant(
                        name=name, activity_status=tenants_pb2.TENANT_ACTIVITY_STATUS_HOT
                    )
                    for name in sorted(collection.tenants)
                ]
            )

    # --- servers --------------------------------------------------------------------------

    def start(self) -> WeaviateDouble:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self))
        self._http.daemon_threads = True
        self.http_port = self._http.server_port
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Servicer(self), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._grpc is not None:
            self._grpc.stop(grace=0)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()


def _matches(filters: base_pb2.Filters, obj: StoredObject) -> bool:
    op = filters.operator
    if op == base_pb2.Filters.OPERATOR_AND:
        return all(_matches(inner, obj) for inner in filters.filters)
    if op == base_pb2.Filters.OPERATOR_OR:
        return any(_matches(inner, obj) for inner in filters.filters)
    name = filters.target.property if filters.HasField("target") else (list(filters.on) or [""])[0]
    value = obj.uuid if name == "_id" else obj.properties.get(name)
    kind = filters.WhichOneof("test_value")
    expected = getattr(filters, kind) if kind else None
    if op == base_pb2.Filters.OPERATOR_EQUAL:
        return value == expected
    if op == base_pb2.Filters.OPERATOR_NOT_EQUAL:
        return value != expected
    if op == base_pb2.Filters.OPERATOR_CONTAINS_ANY and kind and kind.endswith("_array"):
        return value in list(expected.values)
    raise _DoubleError(
        400, grpc.StatusCode.UNIMPLEMENTED, f"filter operator {op} not in the double"
    )


class _Servicer(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, double: WeaviateDouble) -> None:
        self.double = double

    def _run(self, name: str, fn: Any, request: Any, context: grpc.ServicerContext) -> Any:
        self.double.calls.append(f"grpc {name}")
        failure = self.double._failure(self.double.grpc_failures, name)
        if failure is not None:
            self.double._wait(failure)
            context.abort(failure.code, failure.message)
        try:
            return fn(request)
        except _DoubleError as err:
            context.abort(err.code, err.message)

    def Search(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._run("Search", self.double.search, request, context)

    def BatchObjects(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._run("BatchObjects", self.double.batch_objects, request, context)

    def BatchDelete(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._run("BatchDelete", self.double.batch_delete, request, context)

    def TenantsGet(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._run("TenantsGet", self.double.tenants_get, request, context)


def _rest_handler(double: WeaviateDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet tests

        def _handle(self) -> None:
            url = urlsplit(self.path)
            double.calls.append(f"{self.command} {url.path}")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            failure = double._failure(double.rest_failures, f"{self.command} {url.path}")
            if failure is not None:
                double._wait(failure)
                self._reply(failure.status, {"error": [{"message": failure.message}]})
                return
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            try:
                body = json.loads(raw) if raw else None
                status, answer = double.rest(self.command, url.path, query, body)
            except _DoubleError as err:
                status, answer = err.status, {"error": [{"message": err.message}]}
            except (ValueError, KeyError, TypeError) as err:
                status, answer = 422, {"error": [{"message": f"bad request: {err}"}]}
            self._reply(status, answer)

        def _reply(self, status: int, answer: Any) -> None:
            data = b"" if answer is None or status == 204 else json.dumps(answer).encode()
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data and self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler


@contextmanager
def weaviate_double() -> Iterator[WeaviateDouble]:
    double = WeaviateDouble().start()
    try:
        yield double
    finally:
        double.stop()
