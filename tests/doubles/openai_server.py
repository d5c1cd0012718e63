"""A local stand-in for the OpenAI HTTP API, faithful where our providers depend on it.

It speaks real HTTP on 127.0.0.1 so the real ``openai`` SDK runs end to end: multipart
uploads for transcriptions, server-sent events for streamed chat completions (the same
chunk shape the API sends, ending with ``data: [DONE]``), and raw PCM for speech. It
records every request so tests can assert what was sent, and it can fail on demand
(HTTP status, slow answers, a dropped stream).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-test-double-0123456789"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    json: dict[str, Any] | None = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (filename, data)


@dataclass
class Failure:
    status: int = 500
    delay: float = 0.0  # seconds before answering (beyond the client timeout: a timeout)
    message: str = "The server had an error while processing your request."


class OpenAIDouble:
    """Configure the answers, start it, point ``OPENAI_BASE_URL`` at ``base_url``."""

    def __init__(self) -> None:
        self.transcript = "hello from the double"
        self.reply_tokens: list[str] = ["Hello", " there", "!", " How", " can", " I", " help?"]
        self.token_delay = 0.0
        self.pcm = bytes(range(256)) * 200  # 51 200 bytes of "audio"
        self.api_key = API_KEY
        self.failures: dict[str, Failure] = {}  # path -> failure to answer with
        self.requests: list[RecordedRequest] = []
        self.stream_aborted = threading.Event()  # the client hung up mid-stream
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def start(self) -> None:
        double = self

        class Handler(_Handler):
            owner = double

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server = self._server
        # A short poll interval: shutdown() waits up to one interval.
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def running_openai_double() -> Iterator[OpenAIDouble]:
    double = OpenAIDouble()
    double.start()
    try:
        yield double
    finally:
        double.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIDouble
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as the real API

    def log_message(self, format: str, *args: Any) -> None:  # quiet; never logs headers
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = RecordedRequest("POST", self.path, headers)
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            request.json = json.loads(body)
        elif content_type.startswith("multipart/form-data"):
            request.form, request.files = _parse_multipart(content_type, body)
        self.owner.requests.append(request)

        failure = self.owner.failures.get(self.path)
        if failure is not None:
            time.sleep(failure.delay)
            try:
                return self._error(failure.status, failure.message)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                self.close_connection = True
                return None
        if self.headers.get("Authorization") != f"Bearer {self.owner.api_key}":
            return self._error(401, "Incorrect API key provided.", code="invalid_api_key")
        routes = {
            "/v1/audio/transcriptions": self._transcription,
            "/v1/chat/completions": self._chat,
            "/v1/audio/speech": self._speech,
        }
        route = routes.get(self.path)
        if route is None:
            return self._error(404, f"Unknown path {self.path}")
        route(request)

    # --- endpoints ---------------------------------------------------------------
    def _transcription(self, request: RecordedRequest) -> None:
        self._json(200, {"text": self.owner.transcript})

    def _chat(self, request: RecordedRequest) -> None:
        params = request.json or {}
        model = params.get("model", "")
        base = {
            "id": "chatcmpl-double",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_double",
        }
        if not params.get("stream"):
            text = "".join(self.owner.reply_tokens)
            message = {"role": "assistant", "content": text, "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            return self._json(200, {**base, "object": "chat.completion", "choices": [choice]})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": token}) for token in self.owner.reply_tokens]
        events.append(chunk({}, "stop"))
        self._start_chunked(200, "text/event-stream; charset=utf-8")
        try:
            for event in events:
                self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
                time.sleep(self.owner.token_delay)
            self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.owner.stream_aborted.set()
            self.close_connection = True

    def _speech(self, request: RecordedRequest) -> None:
        self._start_chunked(200, "application/octet-stream")
        pcm = self.owner.pcm
        try:
            for start in range(0, len(pcm), 4096):  # arrives in pieces, as a real stream
                self._write_chunk(pcm[start : start + 4096])
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.owner.stream_aborted.set()
            self.close_connection = True

    # --- HTTP plumbing -------------------------------------------------------------
    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        error = {"message": message, "type": kind, "param": None, "code": code}
        self._json(status, {"error": error})

    def _start_chunked(self, status: int, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Fields and files of a multipart/form-data body, with the stdlib email parser."""
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = (filename, payload)
        else:
            form[str(name)] = payload.decode()
    return form, files
