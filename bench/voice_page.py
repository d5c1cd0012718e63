"""What a person on the voice page waits, measured in real Chromium; written to BENCHMARKS.md.

    .venv/bin/python bench/voice_page.py [--rounds 2] [--barge-ins 5] [--out BENCHMARKS.md]

Starts daphne + a Celery worker on the local Redis and PostgreSQL with the offline models
(tests/stack.py) and Debian's Chromium whose microphone is a WAV file: 1 s of silence, a
question from ../shared/audio/dev, then silence. The page runs hands-free (server VAD).

- **Speech end → reply audible**: from the moment the last word of the question left the
  microphone (the first captured frame's time plus the file's offset of the speech end)
  to the moment the first reply buffer starts playing on the page's audio clock. This is
  the whole wait a person has: VAD hangover, network, STT, LLM, TTS, the page's jitter
  buffer.
- **The same page with ``prefers-reduced-motion``**: no animation, so headless Chromium's
  software rendering takes no CPU from the server between frames (see the report).
- **The same question from the command-line client** (``realtime.client``, real-time
  pacing, a new connection each time), alternating with the page in the same run: the
  last speech frame sent → the first reply byte received. The ratio page / client is what
  the browser adds (its jitter buffer, and Chromium sharing the two cores with the server).
- **Barge-in → silence**: the person speaks over a long answer (the dragon story); from
  the page handling the server's ``speech.started`` to the output analyser reading
  silence.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import machine, percentile, write_section  # noqa: E402
from realtime.client import VoiceClient, ws_url  # noqa: E402
from tests.browser import launch, microphone, require_browser, sign_in  # noqa: E402
from tests.helpers import DEV_AUDIO, read_pcm  # noqa: E402
from tests.stack import Stack  # noqa: E402

LEAD_S = 1.0
QUESTIONS = [f"q{n:02d}_piper" for n in range(1, 11)]


def one_question(
    playwright: Any, stack: Stack, workdir: Path, name: str, *, reduced_motion: bool = False
) -> dict[str, Any]:
    speech_s = len(read_pcm(f"{name}.wav")) / 32000
    browser = launch(playwright, microphone(workdir, name, LEAD_S, name, 30.0))
    try:
        page = sign_in(browser, stack, reduced_motion="reduce" if reduced_motion else None)
        page.click("#start")
        page.wait_for_function("voiceapp.stats.audioStarts.length > 0", timeout=60_000)
        stats = page.evaluate("voiceapp.stats")
        speech_end = stats["firstFrameAt"] + (LEAD_S + speech_s) * 1000
        heard_ms = stats["audioStarts"][0]["at"] - speech_end
        page.wait_for_function("document.querySelector('.turn[data-status]')", timeout=60_000)
        detail = page.get_attribute(".turn .detail", "title").replace("\n", ", ")
    finally:
        browser.close()
    return {"file": name, "heard_ms": round(heard_ms, 1), "detail": detail}


def cli_question(stack: Stack, token: str, name: str) -> float | None:
    """The command-line client's wait for the same question (in a thread: Playwright's
    sync API owns this thread's event loop)."""

    async def ask() -> float | None:
        async with VoiceClient(ws_url(stack.base_url), token) as client:
            pcm = b"\0\0" * int(LEAD_S * 16000) + read_pcm(f"{name}.wav")
            return (await client.turn(pcm)).client_first_audio_ms

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, ask()).result()


def one_barge_in(playwright: Any, stack: Stack, workdir: Path) -> dict[str, Any]:
    mic = microphone(workdir, "barge", LEAD_S, "q10_piper", 9.0, "q06_piper", 40.0)
    browser = launch(playwright, mic)
    try:
        page = sign_in(browser, stack)
        page.click("#start")
        page.wait_for_function(
            "voiceapp.stats.lastBargeIn && voiceapp.stats.lastBargeIn.silentAfterMs !== undefined",
            timeout=90_000,
        )
        barge = page.evaluate("voiceapp.stats.lastBargeIn")
    finally:
        browser.close()
    return {"silent_after_ms": barge["silentAfterMs"], "played_ms": barge["playedMs"]}


def report(rows: list[dict[str, Any]], barges: list[dict[str, Any]], info: dict[str, str]) -> str:
    heard = [row["heard_ms"] for row in rows]
    still = [row["still_ms"] for row in rows]
    cli = [row["cli_ms"] for row in rows if row["cli_ms"] is not None]
    ratio = statistics.median(heard) / statistics.median(cli)
    still_ratio = statistics.median(still) / statistics.median(cli)
    silent = [row["silent_after_ms"] for row in barges]
    lines = [
        "## The voice page in Chromium (`bench/voice_page.py`)",
        "",
        f"Measured {dt.date.today().isoformat()} on {info['cpu']}, {info['memory']}, "
        f"Python {info['python']}; Debian's Chromium (headless) on the same machine as "
        "daphne, one Celery worker, Redis and PostgreSQL, with the offline models. The "
        "microphone is a WAV: 1 s of silence, the question, silence; hands-free (server VAD).",
        "",
        "| what | P50 | P95 | n |",
        "| --- | ---: | ---: | ---: |",
        f"| speech end → reply audible on the page | {statistics.median(heard):.0f} ms | "
        f"{percentile(heard, 0.95):.0f} ms | {len(heard)} |",
        f"| the same, the page with `prefers-reduced-motion` (no animation) | "
        f"{statistics.median(still):.0f} ms | {percentile(still, 0.95):.0f} ms | {len(still)} |",
        f"| the same questions, command-line client: last frame sent → first reply byte | "
        f"{statistics.median(cli):.0f} ms | {percentile(cli, 0.95):.0f} ms | {len(cli)} |",
        f"| ratio of the medians, page / client | {ratio:.2f} | | |",
        f"| ratio of the medians, page without animation / client | {still_ratio:.2f} | | |",
    ]
    if silent:
        lines.append(
            f"| barge-in → output silent | {statistics.median(silent):.0f} ms | "
            f"{percentile(silent, 0.95):.0f} ms | {len(silent)} |"
        )
    lines += [
        "",
        "Speech end → reply audible is everything a person waits: the VAD hangover that "
        "decides they have finished (400 ms), STT, the LLM's first clause, its TTS, the "
        "Celery and channel-layer hops, the WebSocket and the page's 50 ms jitter buffer. "
        "Barge-in → silent runs from the page handling `speech.started` to its output "
        "analyser reading silence (target: under 200 ms). Chromium runs headless here, on the "
        "server's own two cores, and renders in software: every animation frame of the page "
        "(the state orb) takes CPU from STT and the LLM, which is what the gap between the two "
        "page rows measures. On a person's device the browser has its own CPU and composites "
        "these animations on the GPU; the row without animation is the closer estimate of "
        "what the page itself adds (the jitter buffer, capture, the WebSocket).",
        "",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--barge-ins", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    if not DEV_AUDIO.exists():
        print(f"no test speech at {DEV_AUDIO}", file=sys.stderr)
        return 2
    sync_playwright = require_browser()
    rows: list[dict[str, Any]] = []
    barges: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        # Three sessions a question (page twice, client once): more than a person's hour.
        Stack(
            log_dir=ROOT / "artifacts" / "bench-voice-page",
            extra_env={"VOICEAPP_SESSIONS_PER_HOUR": "10000"},
        ) as stack,
        sync_playwright() as playwright,
    ):
        workdir = Path(tmp)
        token = stack.token()
        cli_question(stack, token, "q01_piper")  # the worker's first turns are slower
        for round_ in range(args.rounds):
            for name in QUESTIONS:
                row = one_question(playwright, stack, workdir, name)
                still = one_question(playwright, stack, workdir, name, reduced_motion=True)
                row["still_ms"] = still["heard_ms"]
                row["cli_ms"] = cli_question(stack, token, name)
                print(
                    f"round {round_ + 1} {name}: page {row['heard_ms']:.0f} ms, without "
                    f"animation {row['still_ms']:.0f} ms, client {row['cli_ms']:.0f} ms "
                    f"({row['detail']})"
                )
                rows.append(row)
        for n in range(args.barge_ins):
            barge = one_barge_in(playwright, stack, workdir)
            print(f"barge-in {n + 1}: silent after {barge['silent_after_ms']} ms")
            barges.append(barge)
    section = report(rows, barges, machine())
    print(section)
    write_section(Path(args.out), section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
