"""The HTTP fallback against the WebSocket on the same stack, written to BENCHMARKS.md.

    .venv/bin/python bench/rest_vs_ws.py [--rounds 3] [--files jfk.wav ...]

Starts daphne + a Celery worker on the local Redis and PostgreSQL with the offline models
(tests/stack.py) and sends the same WAVs both ways, alternating in one run:

- WebSocket: ``realtime.client.VoiceClient`` with ``vad=client``, the audio sent at once
  (no real-time pacing), then ``input_audio.commit``; PCM16 reply audio.
- HTTP: ``POST /api/voice/turns/`` with the WAV as ``audio``; a WAV reply in base64.

Reported per transport, P50/P95 over all turns: end to end (the client starts sending →
the whole answer received: ``turn.done`` / the parsed 201 body) and, for the WebSocket,
time to first audio (the client starts sending → first reply audio byte). REST returns
no audio before the end, so its first audio is its end to end. Every turn is an
independent question (``session.reset`` / no ``session_id``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import machine, percentile, write_section  # noqa: E402
from realtime.client import VoiceClient, ws_url  # noqa: E402
from tests.helpers import DEV_AUDIO, read_pcm  # noqa: E402
from tests.stack import Stack  # noqa: E402

FILES = ("jfk.wav", "q01_piper.wav", "q02_espeak.wav", "q04_piper.wav", "q06_espeak.wav")
#: Every turn without ``session_id`` opens a session: quotas out of the way. A greedy LLM
#: gives both transports the same reply to the same audio, so only the transport differs.
STACK_ENV = {
    "VOICEAPP_SESSIONS_PER_HOUR": "10000",
    "VOICEAPP_MAX_CONCURRENT_SESSIONS": "10000",
    "VOICEAPP_TURNS_PER_DAY": "10000",
    "VOICEAPP_LLM_TEMPERATURE": "0",
}


def post_turn(base_url: str, token: str, wav: bytes) -> dict[str, Any]:
    """One multipart ``POST /api/voice/turns/`` (blocking); the parsed answer."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="q.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + wav
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        base_url + "/api/voice/turns/",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as err:
        return {"status": "failed", "error": json.loads(err.read() or b"{}")}


class TimedClient(VoiceClient):
    """Notes when the first reply audio byte of the current turn arrives."""

    first_audio_at: float | None = None

    async def _receive_event(self, timeout: float = 60.0) -> dict[str, Any]:
        event = await super()._receive_event(timeout)
        if event["type"] == "<audio>" and self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
        return event


async def run(stack: Stack, token: str, files: list[str], rounds: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    client = TimedClient(ws_url(stack.base_url), token, vad="client")
    async with client:
        for warm in ("jfk.wav", "q01_piper.wav"):  # a worker's first turns are slower
            await ws_turn_timed(client, read_pcm(warm))
            await rest_turn_timed(stack, token, (DEV_AUDIO / warm).read_bytes())
        for round_no in range(rounds):
            for n, name in enumerate(files):
                order = ("ws", "rest") if (n + round_no) % 2 == 0 else ("rest", "ws")
                for transport in order:
                    row = await (
                        ws_turn_timed(client, read_pcm(name))
                        if transport == "ws"
                        else rest_turn_timed(stack, token, (DEV_AUDIO / name).read_bytes())
                    )
                    rows.append({"file": name, "round": round_no, "transport": transport, **row})
                    print(
                        f"{name:16} {transport:4} {row['status']:9} "
                        f"end={row['end_to_end_ms']:.0f} first={row['first_audio_ms']}",
                        flush=True,
                    )
    return rows


async def ws_turn_timed(client: TimedClient, pcm: bytes) -> dict[str, Any]:
    client.first_audio_at = None
    start = time.perf_counter()
    result = await client.turn(pcm, commit=True, realtime=False)
    end_ms = (time.perf_counter() - start) * 1000
    await client.send_json(type="session.reset")
    first = client.first_audio_at
    return {
        "status": result.status,
        "transcript": result.transcript,
        "reply": result.reply,
        "end_to_end_ms": end_ms,
        "first_audio_ms": None if first is None else (first - start) * 1000,
        "server": result.timings,
    }


async def rest_turn_timed(stack: Stack, token: str, wav: bytes) -> dict[str, Any]:
    start = time.perf_counter()
    body = await asyncio.to_thread(post_turn, stack.base_url, token, wav)
    end_ms = (time.perf_counter() - start) * 1000
    return {
        "status": body.get("status", "failed"),
        "transcript": body.get("transcription", ""),
        "reply": body.get("response_text", ""),
        "end_to_end_ms": end_ms,
        "first_audio_ms": end_ms,  # the audio arrives with the whole answer
        "server": body.get("timings", {}),
    }


def stats(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    values = [float(row[key]) for row in rows if row.get(key) is not None]
    return statistics.median(values), percentile(values, 0.95)


def server_stats(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    values = [float(row["server"][key]) for row in rows if row["server"].get(key) is not None]
    return statistics.median(values), percentile(values, 0.95)


def same_reply_ratios(rows: list[dict[str, Any]]) -> list[float]:
    """HTTP / WebSocket end to end for each file and round where both said the same.

    Even greedy, llama.cpp's reply can change with what its cache held before, and a
    longer reply takes longer either way: only equal replies compare the transports.
    """
    pairs: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "completed":
            pairs.setdefault((row["file"], row["round"]), {})[row["transport"]] = row
    return [
        pair["rest"]["end_to_end_ms"] / pair["ws"]["end_to_end_ms"]
        for pair in pairs.values()
        if len(pair) == 2 and pair["rest"]["reply"] == pair["ws"]["reply"]
    ] or [float("nan")]


def report(rows: list[dict[str, Any]], files: list[str], rounds: int, info: dict[str, str]) -> str:
    ok = {
        t: [r for r in rows if r["transport"] == t and r["status"] == "completed"]
        for t in ("ws", "rest")
    }
    ws_e2e, rest_e2e = stats(ok["ws"], "end_to_end_ms"), stats(ok["rest"], "end_to_end_ms")
    ws_first = stats(ok["ws"], "first_audio_ms")
    paired = same_reply_ratios(rows)
    lines = [
        "## HTTP fallback against the WebSocket (`bench/rest_vs_ws.py`)",
        "",
        f"Measured {dt.date.today().isoformat()}: {len(ok['ws'])} WebSocket and "
        f"{len(ok['rest'])} HTTP turns completed of {len(rows)} ({rounds} rounds over "
        f"{', '.join(f'`{f}`' for f in files)}), alternating on one stack: daphne + Redis "
        "channel layer + one Celery worker (prefork, concurrency 1) + PostgreSQL, Whisper "
        "tiny.en, SmolLM2-135M-Instruct Q4_1 at temperature 0 (mostly the same reply both ways), "
        "piper joe. WebSocket: `vad=client`, the WAV "
        "sent at once in 20 ms frames, then `input_audio.commit`, PCM16 reply. HTTP: "
        "`POST /api/voice/turns/` with the WAV, WAV reply in base64.",
        "",
        f"- Machine: {info['cpu']}, {info['memory']}; Python {info['python']}",
        "",
        "| client-side timing | P50 ms | P95 ms |",
        "| --- | ---: | ---: |",
        *(
            f"| {label} | {p50:.0f} | {p95:.0f} |"
            for label, (p50, p95) in (
                ("WebSocket end to end (first frame sent → `turn.done`)", ws_e2e),
                ("HTTP end to end (request sent → 201 body parsed)", rest_e2e),
                ("WebSocket first audio (first frame sent → first audio byte)", ws_first),
                ("HTTP first audio (= its end to end: no audio before the answer)", rest_e2e),
            )
        ),
        "",
        f"HTTP / WebSocket, medians of end to end: **{rest_e2e[0] / ws_e2e[0]:.2f}**; "
        f"over the {len(paired)} pairs (same file, same round) that got the same reply text, "
        f"median of the per-pair ratios: **{statistics.median(paired):.2f}**. "
        f"HTTP end to end / WebSocket first audio: **{rest_e2e[0] / ws_first[0]:.2f}** "
        "(what a listener waits before hearing anything).",
        "",
        "| server-side timing | WebSocket P50 | WebSocket P95 | HTTP P50 | HTTP P95 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in (
        "stt_ms",
        "llm_first_clause_ms",
        "tts_first_audio_ms",
        "first_audio_ms",
        "total_ms",
    ):
        ws, rest = server_stats(ok["ws"], name), server_stats(ok["rest"], name)
        lines.append(f"| `{name}` | {ws[0]:.0f} | {ws[1]:.0f} | {rest[0]:.0f} | {rest[1]:.0f} |")
    lines += [
        "",
        "Server-side `first_audio_ms` and `total_ms` count from the commit (WebSocket) or from "
        "the whole request having arrived (HTTP: it includes decoding the upload); HTTP's "
        "`total_ms` ends when the answer is encoded, before it is sent.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", nargs="*", default=list(FILES))
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    log_dir = ROOT / "artifacts" / "bench-rest"
    with Stack(log_dir=log_dir, extra_env=STACK_ENV) as stack:
        rows = asyncio.run(run(stack, stack.token(), args.files, args.rounds))
    (log_dir / "rest-vs-ws-rows.json").write_text(json.dumps(rows, indent=1))
    section = report(rows, args.files, args.rounds, machine())
    print(section)
    write_section(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
