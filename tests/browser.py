"""Real-browser helpers: Debian's Chromium driven by Playwright's Python wheel.

Playwright's bundled driver talks to ``/usr/bin/chromium``; no browser is ever
downloaded (never ``playwright install``). Without Chromium the browser tests fail under
CI (``CI=true``), so a missing install step is caught, and are skipped elsewhere.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import read_pcm

if TYPE_CHECKING:
    from tests.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
#: A WAV file as the microphone (Chromium loops it) and audio that may play unprompted.
MIC_ARGS = [
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def require_browser() -> Any:
    """Playwright's sync API, or fail (CI) / skip (elsewhere) with the reason."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing: apt-get install -y chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed: pip install -r requirements.txt"
    if problem is None:
        return sync_playwright
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save an artifact. Headless Chromium on a loaded 2-core machine now and then answers
    "Unable to capture screenshot" while it is still compositing; a retry settles it."""
    path = ARTIFACTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        try:
            page.screenshot(path=str(path), full_page=full_page)
            return path
        except Exception:
            if attempt == 2:
                raise
            page.wait_for_timeout(500)
    return path


def microphone(tmp_path: Path, name: str, *parts: str | float) -> Path:
    """A 16 kHz WAV of dev speech (by name) and silences (seconds), in order."""
    pcm = b"".join(
        b"\0\0" * int(part * 16000) if isinstance(part, float) else read_pcm(f"{part}.wav")
        for part in parts
    )
    path = tmp_path / f"{name}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm)
    return path


def launch(playwright: Any, mic: Path | None, *, allow_microphone: bool = True) -> Any:
    """Chromium whose microphone plays ``mic``; without ``allow_microphone`` the page's
    request for it is refused, as when a person clicks "Block"."""
    args = [*CHROMIUM_ARGS, *MIC_ARGS]
    if mic is not None:
        args.append(f"--use-file-for-fake-audio-capture={mic}")
    if allow_microphone:
        args.append("--use-fake-ui-for-media-stream")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)


def sign_in(
    browser: Any, stack: Stack, *, username: str = "", password: str = "", **context: Any
) -> Any:
    """A new browser context signed in on the voice page (``context``: viewport, ...)."""
    page = browser.new_context(base_url=stack.base_url, **context).new_page()
    page.goto("/voice/")
    page.wait_for_url("**/voice/login/**")
    page.fill("#id_username", username or stack.username)
    page.fill("#id_password", password or stack.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/voice/")
    page.wait_for_function("window.voiceapp && voiceapp.state === 'idle'")
    return page
