"""The voice page's JavaScript unit tests (``tests/js/``), run with Node's test runner.

Resampler, frame packing, the playback queue and the connection's reconnect logic are
plain ES modules, tested in Node without a browser; the browser tests
(``tests/test_voice_page.py``) then exercise them together in real Chromium.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_javascript_unit_tests_pass() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "Node.js is needed for the JavaScript unit tests (`make test` installs it)"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", "tests/js/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    counts = dict(re.findall(r"^\S+ (pass|fail) (\d+)$", result.stdout, re.MULTILINE))
    assert counts.get("fail") == "0" and int(counts.get("pass", 0)) >= 30, result.stdout[-2000:]
