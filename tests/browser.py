"""Real-browser helpers: Debian's Chromium driven by Playwright's Python wheel.

Playwright's bundled driver talks to ``/usr/bin/chromium``; no browser is ever
downloaded (never ``playwright install``). Without Chromium the browser tests fail under
CI (``CI=true``), so a missing install step is caught, and are skipped elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

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
