"""The KPI dashboard in a real browser: log in as staff, render, save a screenshot.

Debian's Chromium driven by Playwright (``tests/browser.py``). Writes
``artifacts/kpi-dashboard.png`` (30 days), ``kpi-dashboard-24h-dark.png`` (hourly, dark
theme) and ``kpi-admin-index.png`` (the link) for people to look at.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conversations.models import Turn, VoiceSession
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_browser, screenshot

PASSWORD = "staff-password-for-the-browser"

pytestmark = pytest.mark.browser


def month_of_turns(users: list[Any]) -> None:
    """30 days of plausible traffic: a latency regression on days 9-6 ago, an error spike."""
    rng = random.Random(20240301)
    now = timezone.now()
    for day in range(30, 0, -1):
        slow = 6 <= day <= 9
        for user in users:
            for _ in range(rng.randint(1, 3)):
                started = now - timedelta(days=day - 1, minutes=rng.randint(5, 1400))
                session = VoiceSession.objects.create(
                    user=user,
                    mode=rng.choice(["pipeline"] * 4 + ["realtime"]),
                    started_at=started,
                    ended_at=started + timedelta(seconds=rng.randint(40, 600)),
                )
                turns = []
                for index in range(rng.randint(1, 6)):
                    stt = rng.gauss(150, 25)
                    token = rng.gauss(70, 15)
                    clause = token + rng.gauss(60, 15)
                    tts = rng.gauss(90, 20) * (2.2 if slow else 1)
                    first_audio = stt + clause + tts + rng.gauss(30, 10)
                    failed = rng.random() < (0.08 if day == 3 else 0.006)
                    turns.append(
                        Turn(
                            session=session,
                            index=index,
                            created_at=started + timedelta(seconds=20 * index),
                            status=Turn.Status.FAILED if failed else Turn.Status.COMPLETED,
                            input_kind="text" if rng.random() < 0.2 else "voice",
                            transport="rest" if rng.random() < 0.1 else "websocket",
                            interrupted=rng.random() < 0.1,
                            stt_ms=stt,
                            llm_first_token_ms=token,
                            llm_first_clause_ms=clause,
                            tts_first_audio_ms=tts,
                            first_audio_ms=None if failed else first_audio,
                            llm_ms=clause + rng.gauss(500, 80),
                            total_ms=first_audio + rng.gauss(2500, 400),
                        )
                    )
                Turn.objects.bulk_create(turns)


def test_dashboard_screenshot(
    live_server: Any, transactional_db: Any, django_user_model: Any
) -> None:
    sync_playwright = require_browser()
    django_user_model.objects.create_user("staffer", password=PASSWORD, is_staff=True)
    month_of_turns(
        [django_user_model.objects.create_user(name) for name in ("alice", "bob", "carol")]
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{live_server.url}/admin/")
            page.fill("#id_username", "staffer")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            screenshot(page, "kpi-admin-index.png")
            page.click("text=KPI dashboard")  # the link on the admin index
            page.click("text=Last 30 days")
            page.wait_for_url("**/admin/voiceapp/kpis/?range=30d")
            assert page.locator("svg.kpi-chart").count() == 4
            assert page.locator(".kpi-card.kpi-missed").count() >= 1
            screenshot(page, "kpi-dashboard.png", full_page=True)
            page.click("text=Last 24 hours")
            page.wait_for_url("**/admin/voiceapp/kpis/?range=24h")
            page.emulate_media(color_scheme="dark")
            screenshot(page, "kpi-dashboard-24h-dark.png", full_page=True)
        finally:
            browser.close()
