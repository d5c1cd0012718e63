"""Command-line client: talk to a running Voiceapp server without a browser.

    python -m realtime.client question.wav --out reply.wav
    python -m realtime.client --text "What is the incubation temperature?"

It logs in (``POST /api/auth/token/``), opens ``/ws/voice/``, streams the WAV at
real-time pace in 20 ms PCM16 frames (server VAD ends the turn, as for a person
speaking), prints every event, saves the reply audio as a WAV and prints the timings.
The same class drives the integration tests and the latency benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import websockets

from realtime.audio import read_wav, resample_pcm16, wav_bytes

INPUT_RATE = 16000
FRAME_MS = 20


class ClientError(RuntimeError):
    pass


def login(base_url: str, username: str, password: str) -> str:
    """An access token for the user (blocking; call it before the event loop starts)."""
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(
        base_url.rstrip("/") + "/api/auth/token/",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["access"])
    except urllib.error.HTTPError as err:
        raise ClientError(f"login failed ({err.code}): check the username and password") from err
    except urllib.error.URLError as err:
        raise ClientError(f"cannot reach {base_url}: {err.reason}") from err


def ws_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/ws/voice/"


@dataclass
class TurnResult:
    turn_id: int | None = None
    status: str = ""
    transcript: str = ""
    reply: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    audio: bytearray = field(default_factory=bytearray)
    audio_format: str = ""
    sample_rate: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Client-side: end of the user's audio (or commit) → first reply audio byte received.
    client_first_audio_ms: float | None = None

    @property
    def audio_seconds(self) -> float:
        if self.audio_format != "pcm16" or not self.sample_rate:
            return 0.0
        return len(self.audio) / 2 / self.sample_rate


class VoiceClient:
    """One WebSocket session. ``on_event`` sees every text event as it arrives."""

    def __init__(self, url: str, token: str, *, on_event: Any = None, **options: Any) -> None:
        query = {"token": token, **{k: v for k, v in options.items() if v is not None}}
        self.url = f"{url}?{urlencode(query)}"
        self.on_event = on_event
        self.ws: Any = None
        self.session: dict[str, Any] = {}
        self._speech_stopped = asyncio.Event()
        self._audio_sent_at: float | None = None

    async def __aenter__(self) -> VoiceClient:
        self.ws = await websockets.connect(self.url, max_size=2**22)
        first = await self._receive_event()
        if first.get("type") != "session.created":
            raise ClientError(f"server refused the session: {first}")
        self.session = first
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def _receive_event(self, timeout: float = 60.0) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(message, bytes):
            return {"type": "<audio>", "bytes": message}
        event = json.loads(message)
        if self.on_event is not None:
            self.on_event(event)
        return event

    async def send_json(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def stream(
        self, pcm: bytes, *, realtime: bool = True, trailing_silence_s: float = 1.5
    ) -> None:
        """Send PCM16 16 kHz in 20 ms frames, then silence until the VAD hears the end."""
        step = INPUT_RATE * 2 * FRAME_MS // 1000
        start = time.perf_counter()
        frames = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        silence = b"\x00" * step
        frames += [silence] * int(trailing_silence_s * 1000 / FRAME_MS)
        speech_frames = (len(pcm) + step - 1) // step
        for n, frame in enumerate(frames):
            if n == speech_frames:
                self._audio_sent_at = time.perf_counter()
            await self.ws.send(frame)
            if realtime:
                delay = start + (n + 1) * FRAME_MS / 1000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
        if self._audio_sent_at is None:
            self._audio_sent_at = time.perf_counter()

    async def turn(
        self,
        pcm: bytes | None = None,
        *,
        text: str | None = None,
        commit: bool = False,
        realtime: bool = True,
        timeout: float = 120.0,
    ) -> TurnResult:
        """Speak (or type) one turn and collect everything the server sends for it."""
        result = TurnResult()
        self._audio_sent_at = None
        receiver = asyncio.create_task(self._collect(result, timeout))
        try:
            if text is not None:
                self._audio_sent_at = time.perf_counter()
                await self.send_json(type="text", text=text)
            elif pcm is not None:
                await self.stream(pcm, realtime=realtime, trailing_silence_s=0 if commit else 1.5)
                if commit:
                    await self.send_json(type="input_audio.commit")
            await receiver
        finally:
            receiver.cancel()
        return result

    async def _collect(self, result: TurnResult, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while True:
            event = await self._receive_event(max(0.1, deadline - time.perf_counter()))
            kind = event["type"]
            if kind == "<audio>":
                if result.client_first_audio_ms is None and self._audio_sent_at is not None:
                    result.client_first_audio_ms = (
                        time.perf_counter() - self._audio_sent_at
                    ) * 1000
                result.audio.extend(event["bytes"])
                continue
            result.events.append(event)
            if kind == "turn.started":
                result.turn_id = event["turn_id"]
            elif kind == "transcript" and event.get("final"):
                result.transcript = event["text"]
            elif kind == "reply.done":
                result.reply = event["text"]
                result.sources = event.get("sources", [])
            elif kind == "audio.started":
                result.audio_format = event["format"]
                result.sample_rate = event["sample_rate"]
            elif kind == "error":
                result.errors.append(event)
                if event.get("fatal") or result.turn_id is None:
                    result.status = "failed"
                    return
            elif kind == "turn.done" and event.get("turn_id") == result.turn_id:
                still_speaking = self._audio_sent_at is None
                if event.get("reason") == "continued" or (
                    still_speaking and event.get("reason") == "barge-in"
                ):
                    # The speaker only paused: the server folded this turn into the next
                    # one, or its reply started during the pause and the rest of our
                    # own speech cut it off. Either way the answer to wait for is the
                    # turn that holds the end of what we say.
                    result.turn_id = None
                    continue
                result.status = event["status"]
                result.timings = event.get("timings", {})
                return


def load_wav_16k(path: Path) -> bytes:
    pcm, rate = read_wav(path.read_bytes())
    return pcm if rate == INPUT_RATE else resample_pcm16(pcm, rate, INPUT_RATE)


def save_wav(path: Path, result: TurnResult) -> None:
    if result.audio_format == "pcm16":
        path.write_bytes(wav_bytes(bytes(result.audio), result.sample_rate))
    else:
        path.write_bytes(bytes(result.audio))


def _print_event(event: dict[str, Any]) -> None:
    if event["type"] == "reply.delta":
        return
    print(json.dumps(event, ensure_ascii=False))


async def _main(args: argparse.Namespace, token: str) -> int:
    options = {
        "vad": args.vad,
        "output_format": args.output_format,
        "voice": args.voice,
        "speed": args.speed,
    }
    async with VoiceClient(ws_url(args.url), token, on_event=_print_event, **options) as client:
        if args.text is not None:
            result = await client.turn(text=args.text)
        else:
            pcm = load_wav_16k(Path(args.file))
            result = await client.turn(pcm, commit=args.vad == "client", realtime=not args.fast)
    if result.audio and args.out:
        save_wav(Path(args.out), result)
        print(f"reply audio: {args.out} ({len(result.audio)} bytes, {result.audio_seconds:.2f} s)")
    print(f"status: {result.status or 'no answer'}")
    print(f"you said: {result.transcript}")
    print(f"assistant: {result.reply}")
    for name, value in result.timings.items():
        print(f"  {name:>20}: {'-' if value is None else f'{value:.0f} ms'}")
    if result.client_first_audio_ms is not None:
        print(f"  {'client first audio':>20}: {result.client_first_audio_ms:.0f} ms")
    return 0 if result.status == "completed" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m realtime.client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", nargs="?", help="a WAV file to speak (any rate, mono or stereo)")
    parser.add_argument("--text", help="type this turn instead of speaking a file")
    parser.add_argument("--url", default=os.environ.get("VOICEAPP_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--username", default=os.environ.get("VOICEAPP_USERNAME", "demo"))
    parser.add_argument("--password", default=os.environ.get("VOICEAPP_PASSWORD"))
    parser.add_argument(
        "--token",
        default=os.environ.get("VOICEAPP_TOKEN"),
        help="an access token instead of username and password",
    )
    parser.add_argument("--out", default="reply.wav", help="where to save the reply audio")
    parser.add_argument("--vad", choices=["server", "client"], default="server")
    parser.add_argument("--output-format", choices=["pcm16", "wav", "mp3", "opus"], default="pcm16")
    parser.add_argument("--voice")
    parser.add_argument("--speed", type=float)
    parser.add_argument("--fast", action="store_true", help="send the audio as fast as possible")
    args = parser.parse_args(argv)
    if args.file is None and args.text is None:
        parser.error("give a WAV file or --text")
    try:
        token = args.token
        if not token:
            if not args.password:
                parser.error("give --password (or VOICEAPP_PASSWORD), or --token")
            token = login(args.url, args.username, args.password)
        return asyncio.run(_main(args, token))
    except (ClientError, OSError, websockets.WebSocketException, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
