"""The admin renders for staff, refuses everyone else, and lists in a constant query count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conversations.models import RateLimitPolicy, Turn, VoiceSession

pytestmark = pytest.mark.django_db

CHANGELISTS = ("voicesession", "turn", "ratelimitpolicy")


def add_sessions(
    user: Any, count: int, *, first_audio: tuple[float, ...] = (100, 200, 400)
) -> None:
    now = timezone.now()
    sessions = VoiceSession.objects.bulk_create(
        VoiceSession(
            user=user,
            status=VoiceSession.Status.CLOSED,
            started_at=now - timedelta(minutes=10),
            ended_at=now - timedelta(minutes=10) + timedelta(seconds=75),
        )
        for _ in range(count)
    )
    statuses = [Turn.Status.COMPLETED, Turn.Status.FAILED, Turn.Status.CANCELLED]
    Turn.objects.bulk_create(
        Turn(
            session=session,
            index=index,
            status=statuses[index % 3],
            transcript=f"what is the opening time number {index}",
            reply="We open at nine in the morning.",
            reply_heard="We open at nine" if index == 2 else "",
            interrupted=index == 2,
            error_code="stt_failed" if index == 1 else "",
            stt_ms=312.4,
            llm_first_token_ms=81.6,
            llm_ms=540.2,
            tts_first_audio_ms=170.9,
            first_audio_ms=value,
            total_ms=1234.5,
        )
        for session in sessions
        for index, value in enumerate(first_audio)
    )


@pytest.fixture
def data(django_user_model: Any) -> dict[str, Any]:
    alice = django_user_model.objects.create_user("alice", password="pw-alice-123")
    add_sessions(alice, 2)
    default = RateLimitPolicy.objects.create(
        sessions_per_hour=60, max_session_seconds=1800, idle_timeout_seconds=300, turns_per_day=500
    )
    own = RateLimitPolicy.objects.create(
        user=alice,
        sessions_per_hour=5,
        max_session_seconds=600,
        idle_timeout_seconds=60,
        turns_per_day=50,
    )
    return {"alice": alice, "default": default, "own": own}


def changelist(name: str) -> str:
    return reverse(f"admin:conversations_{name}_changelist")


def test_changelists_and_pages_render(admin_client: Any, data: dict[str, Any]) -> None:
    session = VoiceSession.objects.first()
    turn = Turn.objects.first()
    assert session is not None and turn is not None
    urls = [changelist(name) for name in CHANGELISTS] + [
        reverse("admin:conversations_voicesession_change", args=[session.pk]),
        reverse("admin:conversations_turn_change", args=[turn.pk]),
        reverse("admin:conversations_ratelimitpolicy_change", args=[data["default"].pk]),
        reverse("admin:conversations_ratelimitpolicy_change", args=[data["own"].pk]),
        reverse("admin:conversations_ratelimitpolicy_add"),
        changelist("voicesession") + "?q=opening+time",
        changelist("voicesession")
        + f"?status=closed&mode=pipeline&user__id__exact={session.user_id}",
        changelist("voicesession") + f"?started_at__year={session.started_at.year}",
        changelist("voicesession") + "?o=6",  # sorted by duration
        changelist("turn") + "?status=failed&interrupted__exact=1&q=alice",
    ]
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_session_list_shows_counts_and_median(admin_client: Any, data: dict[str, Any]) -> None:
    html = admin_client.get(changelist("voicesession")).content.decode()
    assert "1:15" in html  # duration
    assert ">200<" in html  # median of 100, 200, 400
    assert ">3<" in html and ">1<" in html  # turns, errors


def test_session_page_shows_turns_with_readable_status(
    admin_client: Any, data: dict[str, Any]
) -> None:
    session = VoiceSession.objects.first()
    assert session is not None
    url = reverse("admin:conversations_voicesession_change", args=[session.pk])
    html = admin_client.get(url).content.decode()
    for text in ("completed", "failed", "cancelled", "stt_failed", ">312<", ">540<"):
        assert text in html, text
    assert "We open at nine" in html and "interrupted; generated" in html
    assert html.index("number 0") < html.index("number 1") < html.index("number 2")


def test_rate_limit_usage(admin_client: Any, data: dict[str, Any]) -> None:
    html = admin_client.get(changelist("ratelimitpolicy")).content.decode()
    assert "Default (everyone else)" in html
    assert "2 of 5" in html  # alice's sessions in the last hour
    assert "6 of 50" in html  # alice's turns today
    assert "—" in html  # the default policy has no usage of its own


def test_records_are_view_only(admin_client: Any, data: dict[str, Any]) -> None:
    session = VoiceSession.objects.first()
    assert session is not None
    url = reverse("admin:conversations_voicesession_change", args=[session.pk])
    assert admin_client.post(url, {"mode": "realtime"}).status_code == 403
    assert admin_client.get(reverse("admin:conversations_turn_add")).status_code == 403


@pytest.mark.parametrize("name", CHANGELISTS)
def test_non_staff_is_sent_to_login(client: Any, django_user_model: Any, name: str) -> None:
    user = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    client.force_login(user)
    response = client.get(changelist(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelist_queries_do_not_grow_with_rows(
    admin_client: Any,
    django_user_model: Any,
    django_assert_max_num_queries: Any,
    data: dict[str, Any],
    name: str,
) -> None:
    url = changelist(name)
    admin_client.get(url)  # warm up: session and content-type caches
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    for index in range(12):
        user = django_user_model.objects.create_user(f"user{index}")
        add_sessions(user, 2)
        RateLimitPolicy.objects.create(
            user=user,
            sessions_per_hour=9,
            max_session_seconds=9,
            idle_timeout_seconds=9,
            turns_per_day=9,
        )
    with django_assert_max_num_queries(len(few)):
        assert admin_client.get(url).status_code == 200
