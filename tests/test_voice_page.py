"""The voice page in real Chromium against the production path with the real models.

daphne + a Celery worker + Redis + PostgreSQL (``tests.stack``), Debian's Chromium whose
microphone is a WAV file (``--use-file-for-fake-audio-capture``; Chromium loops it), and
Playwright. Each test composes the microphone's WAV from ``../shared/audio/dev`` speech
and silence, so what the "person" says, and when, is fixed.

Screenshots of every state go to ``artifacts/voice-page/`` for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import ARTIFACTS, launch, microphone, require_browser, screenshot, sign_in
from tests.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.models]

SHOTS = "voice-page"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(
        log_dir=ARTIFACTS / "stack-voice-page",
        extra_env={"VOICEAPP_QUEUE_WAIT_S": "60"},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    sync_playwright = require_browser()
    with sync_playwright() as driver:
        yield driver


def wait_state(page: Any, state: str, timeout_s: float = 30) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "state => voiceapp.state === state", arg=state, timeout=timeout_s * 1000, polling=20
        )
    except PlaywrightTimeout:
        seen = page.evaluate("JSON.stringify({stats: voiceapp.stats, notice: notice.innerText})")
        raise AssertionError(f"the page never reached {state!r}: {seen}") from None


def shot(page: Any, state: str) -> None:
    page.wait_for_timeout(300)  # the orb's colour transition
    screenshot(page, f"{SHOTS}/{state}.png")


def turns(stack: Stack) -> list[dict[str, Any]]:
    rows = stack.query(
        "SELECT t.id, t.session_id, t.status, t.transport, t.input_kind, t.interrupted,"
        " t.transcript, t.reply, t.reply_heard FROM conversations_turn t ORDER BY t.id"
    )
    keys = ("id", "session_id", "status", "transport", "input_kind", "interrupted")
    keys += ("transcript", "reply", "reply_heard")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def new_turns(stack: Stack, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {turn["id"] for turn in before}
    return [turn for turn in turns(stack) if turn["id"] not in seen]


def test_spoken_question_is_answered_and_heard(
    stack: Stack, playwright: Any, tmp_path: Path
) -> None:
    """Hands-free: speak → transcript and reply appear, reply audio really plays."""
    before = turns(stack)
    browser = launch(playwright, microphone(tmp_path, "q08", 1.5, "q08_piper", 25.0))
    try:
        page = sign_in(browser, stack)
        shot(page, "idle")
        page.click("#start")
        wait_state(page, "listening")
        assert page.evaluate("voiceapp.stats.contextRate") in (44100, 48000, 16000, 22050)
        shot(page, "listening")
        wait_state(page, "user-speaking")
        page.wait_for_function("voiceapp.stats.inputLevelDb > -50")
        shot(page, "user-speaking")
        wait_state(page, "thinking")
        shot(page, "thinking")
        wait_state(page, "assistant-speaking")
        shot(page, "assistant-speaking")
        page.wait_for_function(
            "document.querySelector('.turn[data-status=completed]')"
            " && voiceapp.state === 'listening'",
            timeout=60_000,
        )
        said = page.inner_text(".turn .said.user .words").lower()
        assert "australia" in said
        reply = page.inner_text(".turn .said.assistant .words")
        assert len(reply.split()) >= 2
        assert "answered in" in page.inner_text(".turn .detail")
        assert "first audio" in page.get_attribute(".turn .detail", "title")
        playback = page.evaluate("voiceapp.playback.stats")
        assert playback["buffers"] >= 2 and playback["seconds"] > 1.0
        assert page.evaluate("voiceapp.stats.maxOutputLevel") > 0.01, "the reply was not audible"
        assert page.evaluate("voiceapp.stats.framesSent") > 100
    finally:
        browser.close()
    stored = new_turns(stack, before)
    assert len(stored) == 1
    assert stored[0]["status"] == "completed" and stored[0]["transport"] == "websocket"
    assert not stored[0]["interrupted"]
    assert "australia" in stored[0]["transcript"].lower()


def test_barge_in_stops_playback_and_the_turn_is_stored_interrupted(
    stack: Stack, playwright: Any, tmp_path: Path
) -> None:
    """A long answer; the person speaks over it: it stops at once, nothing stale plays.

    The story takes far longer to tell than the 9 s pause before the second question, and
    its first audio comes well within them even on a loaded machine, so the second
    question lands in the middle of the reply (a barge-in, not a continuation).
    """
    before = turns(stack)
    mic = microphone(tmp_path, "barge", 1.5, "q10_piper", 9.0, "q06_piper", 40.0)
    browser = launch(playwright, mic)
    try:
        page = sign_in(browser, stack)
        page.click("#start")
        wait_state(page, "assistant-speaking", timeout_s=60)
        wait_state(page, "interrupted", timeout_s=30)
        shot(page, "interrupted")
        barge = page.evaluate("voiceapp.stats.lastBargeIn")
        assert barge["reason"] == "speech"
        assert barge["playedMs"] > 500
        page.wait_for_function("voiceapp.stats.lastBargeIn.silentAfterMs !== undefined")
        silent_after = page.evaluate("voiceapp.stats.lastBargeIn.silentAfterMs")
        assert silent_after < 200, f"audio went on for {silent_after} ms after the barge-in"
        # The second question is answered; nothing of the first reply played in between.
        page.wait_for_function(
            "document.querySelectorAll('.turn[data-status=completed]').length >= 1"
            " && voiceapp.stats.lastBargeIn.buffersBeforeNextTurn !== undefined",
            timeout=60_000,
        )
        barge = page.evaluate("voiceapp.stats.lastBargeIn")
        assert barge["buffersBeforeNextTurn"] == barge["buffersAtStop"], "stale audio played"
        assert page.locator(".turn.interrupted").count() == 1
        page.wait_for_selector(".turn.interrupted .unheard")
        words = page.locator(".turn.interrupted .said.assistant .words")
        shown_heard = words.evaluate("node => node.firstChild.textContent")
        assert page.inner_text(".turn.interrupted .unheard").strip(), "the unheard rest is shown"
    finally:
        browser.close()
    stored = new_turns(stack, before)
    first = stored[0]
    assert "dragon" in first["transcript"].lower()
    assert first["interrupted"]
    assert len(first["reply_heard"]) < len(first["reply"])
    assert shown_heard.split() == first["reply_heard"].split(), "the page shows what was kept"
    assert any("leap year" in turn["transcript"].lower() for turn in stored[1:])


def test_microphone_refused_then_a_typed_turn_works(stack: Stack, playwright: Any) -> None:
    before = turns(stack)
    browser = launch(playwright, None, allow_microphone=False)
    try:
        page = sign_in(browser, stack)
        page.click("#start")
        wait_state(page, "listening")
        notice = page.inner_text("#notice")
        assert "Microphone access is blocked" in notice and "type" in notice
        assert page.evaluate("document.body.dataset.input") == "text"
        assert page.evaluate("voiceapp.micError") == "NotAllowedError"
        shot(page, "microphone-refused")
        page.fill("#text-input", "What is the incubation temperature for chicken eggs?")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelector('.turn[data-status=completed]')", timeout=60_000
        )
        assert "incubation" in page.inner_text(".turn .said.user .words")
        assert page.inner_text(".turn .said.assistant .words").strip()
        # The answer's knowledge-base sources are listed under it.
        assert page.inner_text(".turn .sources summary").startswith("Sources (")
        page.click(".turn .sources summary")
        assert "Poultry Farm Handbook" in page.inner_text(".turn .sources")
        shot(page, "sources")
    finally:
        browser.close()
    stored = new_turns(stack, before)
    assert [(t["input_kind"], t["transport"], t["status"]) for t in stored] == [
        ("text", "websocket", "completed")
    ]
    [(sources,)] = stack.query(
        "SELECT sources FROM conversations_turn WHERE id = %s", stored[0]["id"]
    )
    assert sources and sources[0]["title"] == "Poultry Farm Handbook"


def test_websocket_impossible_falls_back_to_http(
    stack: Stack, playwright: Any, tmp_path: Path
) -> None:
    before = turns(stack)
    browser = launch(playwright, microphone(tmp_path, "quiet", 5.0))
    try:
        page = sign_in(browser, stack)
        # A proxy that refuses every WebSocket: each connection is closed at once.
        page.route_web_socket("**/ws/voice/**", lambda ws: ws.close(code=1011))
        page.click("#start")
        page.wait_for_function("voiceapp.transport === 'http'", timeout=20_000)
        assert "sent over HTTP" in page.inner_text("#notice")
        assert "HTTP fallback" in page.inner_text("#transport")
        assert page.is_visible("#talk"), "push-to-talk is offered over HTTP"
        shot(page, "http-fallback")
        page.fill("#text-input", "What is the capital city of Australia?")
        page.keyboard.press("Enter")
        page.wait_for_function("voiceapp.stats.httpTurns === 1", timeout=60_000)
        assert page.inner_text(".turn .said.assistant .words").strip()
        assert page.evaluate("voiceapp.playback.stats.buffers") >= 1
        page.wait_for_function("voiceapp.stats.maxOutputLevel > 0.01", timeout=10_000)
    finally:
        browser.close()
    stored = new_turns(stack, before)
    assert [(t["transport"], t["status"]) for t in stored] == [("rest", "completed")]


def test_dropped_connection_reconnects_and_resumes_the_session(
    stack: Stack, playwright: Any, tmp_path: Path
) -> None:
    before = turns(stack)
    browser = launch(playwright, microphone(tmp_path, "quiet", 5.0))
    routes: list[Any] = []
    refuse = {"left": 0}

    def relay(ws: Any) -> None:
        if refuse["left"] > 0:
            refuse["left"] -= 1
            ws.close(code=1011)
            return
        ws.connect_to_server()
        routes.append(ws)

    try:
        page = sign_in(browser, stack)
        page.route_web_socket("**/ws/voice/**", relay)
        page.click("#start")
        wait_state(page, "listening")
        first_session = page.evaluate("voiceapp.sessionId")
        page.fill("#text-input", "What is the capital city of Australia?")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelector('.turn[data-status=completed]')", timeout=60_000
        )
        wait_state(page, "listening")
        # The link drops (a server restart, a network change); the next two tries fail.
        refuse["left"] = 2
        routes[-1].close(code=1001)
        wait_state(page, "reconnecting", timeout_s=5)
        shot(page, "reconnecting")
        wait_state(page, "listening", timeout_s=20)
        assert page.evaluate("voiceapp.sessionId") == first_session
        assert page.evaluate("voiceapp.stats.reconnects") == 1
        assert "Reconnected" in page.inner_text("#notice")
        page.fill("#text-input", "How many days are there in a leap year?")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelectorAll('.turn[data-status=completed]').length === 2", timeout=60_000
        )
    finally:
        browser.close()
    stored = new_turns(stack, before)
    assert len(stored) == 2
    assert stored[0]["session_id"] == stored[1]["session_id"] == first_session


def test_quota_reached_is_explained(stack: Stack, playwright: Any) -> None:
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model;"
        "from conversations.models import RateLimitPolicy;"
        "u = get_user_model().objects.create_user('limited', password='limited-pass-1');"
        "RateLimitPolicy.objects.create(user=u, sessions_per_hour=0, max_session_seconds=600,"
        " idle_timeout_seconds=60, turns_per_day=10)",
    )
    browser = launch(playwright, None)
    try:
        page = sign_in(browser, stack, username="limited", password="limited-pass-1")
        page.click("#start")
        wait_state(page, "error")
        assert page.inner_text("#status-label") == "Usage limit reached"
        assert "usage limit" in page.inner_text("#notice")
        assert "Try again" in page.inner_text("#notice")
        shot(page, "error")
        assert page.inner_text("#start") == "Start conversation"
    finally:
        browser.close()


def test_settings_keyboard_push_to_talk_on_a_phone(
    stack: Stack, playwright: Any, tmp_path: Path
) -> None:
    """Keyboard alone on a phone-sized screen with reduced motion: settings are kept per
    user, push-to-talk with the space bar answers the question."""
    before = turns(stack)
    browser = launch(playwright, microphone(tmp_path, "ptt", 2.0, "q08_piper", 25.0))
    try:
        page = sign_in(
            browser,
            stack,
            viewport={"width": 390, "height": 844},
            reduced_motion="reduce",
            has_touch=True,
        )
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        # Settings by keyboard: focus the button, open, choose push-to-talk, slower speech.
        page.focus("#settings-button")
        page.keyboard.press("Enter")
        page.wait_for_selector("#settings[open]")
        page.focus("input[name=vad][value=client]")
        page.keyboard.press("Space")
        page.wait_for_function("voiceapp.prefs.vad === 'client'")
        page.wait_for_function(
            "document.getElementById('settings-status').textContent.startsWith('Saved')"
        )
        shot(page, "settings")
        page.keyboard.press("Escape")
        page.reload()
        page.wait_for_function("window.voiceapp && voiceapp.state === 'idle'")
        assert page.evaluate("voiceapp.prefs.vad") == "client", "settings are kept per user"
        # Start by keyboard, then hold the space bar while the question is spoken.
        page.focus("#start")
        page.keyboard.press("Enter")
        wait_state(page, "listening")
        assert page.is_visible("#talk")
        animation = page.evaluate(
            "getComputedStyle(document.querySelector('.orb span')).animationName"
        )
        assert animation == "none", "reduced motion is respected"
        shot(page, "phone-push-to-talk")
        assert page.evaluate("document.activeElement.id") == "talk"
        page.keyboard.down("Space")
        wait_state(page, "user-speaking")
        page.wait_for_timeout(6500)
        page.keyboard.up("Space")
        wait_state(page, "thinking")
        page.wait_for_function(
            "document.querySelector('.turn[data-status=completed]')", timeout=60_000
        )
        assert "australia" in page.inner_text(".turn .said.user .words").lower()
    finally:
        browser.close()
    stored = new_turns(stack, before)
    assert [(t["input_kind"], t["status"]) for t in stored] == [("voice", "completed")]
