"""Quotas (conversations/ratelimits.py): each allows exactly its limit, refuses the next with
the right ``retry_after``, and holds under concurrency on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from conversations import ratelimits, services
from conversations.models import RateLimitPolicy, Turn, VoiceSession
from tests.conftest import GENEROUS_LIMITS, policy_for
from voiceapp.errors import RateLimited

ROOT = Path(__file__).resolve().parents[2]


def open_session(user: Any, resume_id: int | None = None) -> VoiceSession:
    session, _resumed, _limits = services.session_open(
        user=user, mode="pipeline", config={}, client_info={}, resume_id=resume_id
    )
    return session


def add_turn(user: Any, seconds: float = 0.0, *, session: VoiceSession | None = None) -> Turn:
    session = session or VoiceSession.objects.filter(user=user).first() or open_session(user)
    return services.turn_create(
        session_id=session.pk, user=user, input_kind="voice", input_audio_seconds=seconds
    )


def shift(session: VoiceSession, **ago: timedelta) -> None:
    now = timezone.now()
    VoiceSession.objects.filter(pk=session.pk).update(
        **{field: now - delta for field, delta in ago.items()}
    )


def refused(call: Callable[[], object]) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        call()
    return caught.value


def until_midnight() -> int:
    return math.ceil(ratelimits.seconds_until_tomorrow(timezone.now()))


# --- sessions per hour and concurrent sessions ---------------------------------------------


@pytest.mark.django_db
def test_sessions_per_hour_retry_after_is_when_the_oldest_leaves_the_hour(user: Any) -> None:
    policy_for(user, sessions_per_hour=3)
    sessions = [open_session(user) for _ in range(3)]
    for session, minutes in zip(sessions, (50, 20, 10), strict=True):
        shift(session, started_at=timedelta(minutes=minutes))
    err = refused(lambda: open_session(user))
    assert err.code == "rate_limited" and err.retry_after == 10 * 60
    assert "3 sessions per hour" in err.message
    shift(sessions[0], started_at=timedelta(minutes=60))  # leaves the window exactly now
    open_session(user)


@pytest.mark.django_db
def test_a_lowered_limit_waits_for_enough_sessions_to_leave(user: Any) -> None:
    policy = policy_for(user, sessions_per_hour=3)
    for minutes, session in zip((50, 20, 10), [open_session(user) for _ in range(3)], strict=True):
        shift(session, started_at=timedelta(minutes=minutes))
    RateLimitPolicy.objects.filter(pk=policy.pk).update(sessions_per_hour=1)
    # Three counted, one allowed: all three must leave, the newest at +50 min.
    assert refused(lambda: open_session(user)).retry_after == 50 * 60


@pytest.mark.django_db
def test_concurrent_sessions_count_only_recently_seen_active_sessions(user: Any) -> None:
    policy_for(user, max_concurrent_sessions=2)
    first, second = open_session(user), open_session(user)
    shift(first, last_seen_at=timedelta(seconds=30))
    shift(second, last_seen_at=timedelta(seconds=10))
    err = refused(lambda: open_session(user))
    assert err.retry_after == 60 and "2 sessions at the same time" in err.message
    # A server that died left ``first`` active: unseen for 90 s it stops counting.
    shift(first, last_seen_at=ratelimits.SESSION_SEEN_WINDOW)
    third = open_session(user)
    services.session_close(session_id=third.pk, reason="bye")  # closed: frees its slot
    open_session(user)


@pytest.mark.django_db
def test_resume_counts_as_concurrent_but_not_as_a_new_session(user: Any) -> None:
    policy_for(user, sessions_per_hour=1, max_concurrent_sessions=1)
    first = open_session(user)
    services.session_close(session_id=first.pk, reason="network")
    assert open_session(user, resume_id=first.pk).pk == first.pk  # the hour is not charged
    assert "per hour" in refused(lambda: open_session(user)).message

    RateLimitPolicy.objects.filter(user=user).update(sessions_per_hour=10)
    services.session_close(session_id=first.pk, reason="network")
    second = open_session(user)
    err = refused(lambda: open_session(user, resume_id=first.pk))
    assert "same time" in err.message  # the resumed session needs a free slot
    services.session_close(session_id=second.pk, reason="bye")
    open_session(user, resume_id=first.pk)


@pytest.mark.django_db
def test_reconnecting_to_a_session_that_still_looks_connected_is_allowed(user: Any) -> None:
    policy_for(user, max_concurrent_sessions=1)
    dropped = open_session(user)  # its old connection has not noticed the drop yet
    assert open_session(user, resume_id=dropped.pk).pk == dropped.pk


@pytest.mark.django_db
def test_resuming_a_stale_session_makes_it_count_again(user: Any) -> None:
    policy_for(user, max_concurrent_sessions=1)
    stale = open_session(user)
    shift(stale, last_seen_at=timedelta(minutes=10))
    open_session(user, resume_id=stale.pk)
    assert refused(lambda: open_session(user)).retry_after == 90


# --- turns and audio per day ---------------------------------------------------------------


@pytest.mark.django_db
def test_turns_per_day_refuses_until_midnight(user: Any) -> None:
    policy_for(user, turns_per_day=2)
    add_turn(user)
    add_turn(user)
    err = refused(lambda: add_turn(user))
    assert "2 turns per day" in err.message
    assert abs(err.retry_after - until_midnight()) <= 1


@pytest.mark.django_db
def test_audio_minutes_count_the_new_turns_audio(user: Any) -> None:
    policy_for(user, audio_minutes_per_day=1)
    assert refused(lambda: add_turn(user, 60.5)).retry_after > 0  # alone over the limit
    add_turn(user, 30.0)
    add_turn(user, 30.0)  # exactly the limit
    err = refused(lambda: add_turn(user, 0.2))
    assert "1 minutes of audio per day" in err.message
    assert abs(err.retry_after - until_midnight()) <= 1
    add_turn(user, 0.0)  # a text turn is held only to the turn limit


@pytest.mark.django_db
def test_continued_turns_are_not_counted_twice(user: Any) -> None:
    """Speech resumed before the reply: the turn's audio moves into the next turn."""
    policy_for(user, turns_per_day=1, audio_minutes_per_day=1)
    paused = add_turn(user, 40.0)
    Turn.objects.filter(pk=paused.pk).update(continued=True)
    add_turn(user, 55.0)  # the 40 s again, plus 15 s more
    usage = ratelimits.quota_usage(user=user)
    assert usage["turns_per_day"] == {"used": 1, "limit": 1}
    assert usage["audio_minutes_per_day"] == {"used": round(55 / 60, 2), "limit": 1}


@pytest.mark.django_db
def test_the_day_starts_at_midnight_in_time_zone(user: Any, settings: Any) -> None:
    settings.TIME_ZONE = "Asia/Tokyo"  # UTC+9, no daylight saving time
    policy_for(user, turns_per_day=1)
    now = timezone.now()
    midnight = ratelimits.day_start(now)
    assert midnight.utcoffset() == timedelta(hours=9) and midnight <= now
    yesterday = add_turn(user)
    Turn.objects.filter(pk=yesterday.pk).update(created_at=midnight - timedelta(seconds=1))
    add_turn(user)
    err = refused(lambda: add_turn(user))
    expected = midnight + timedelta(days=1) - timezone.now()
    assert abs(err.retry_after - expected.total_seconds()) <= 1


# --- which policy applies, usage -----------------------------------------------------------


@pytest.mark.django_db
def test_settings_then_default_row_then_own_policy(
    user: Any, other_user: Any, settings: Any
) -> None:
    settings.RATE_LIMIT_DEFAULTS = {**GENEROUS_LIMITS, "turns_per_day": 1}
    add_turn(user)
    assert "1 turns" in refused(lambda: add_turn(user)).message  # settings
    RateLimitPolicy.objects.create(user=None, **{**GENEROUS_LIMITS, "turns_per_day": 2})
    add_turn(user)
    assert "2 turns" in refused(lambda: add_turn(user)).message  # the stored default
    policy_for(user, turns_per_day=3)
    add_turn(user)
    assert "3 turns" in refused(lambda: add_turn(user)).message  # the user's own
    add_turn(other_user)
    add_turn(other_user)
    assert "2 turns" in refused(lambda: add_turn(other_user)).message


@pytest.mark.django_db
def test_quota_usage_reports_every_quota(user: Any, other_user: Any) -> None:
    policy_for(user, sessions_per_hour=5, max_concurrent_sessions=3, audio_minutes_per_day=60)
    stale, live = open_session(user), open_session(user)
    shift(stale, last_seen_at=timedelta(minutes=5))
    add_turn(user, 90.0, session=live)
    add_turn(user, 0.0, session=live)
    add_turn(other_user, 30.0)  # someone else's usage is not counted
    assert ratelimits.quota_usage(user=user) == {
        "sessions_per_hour": {"used": 2, "limit": 5},
        "max_concurrent_sessions": {"used": 1, "limit": 3},
        "turns_per_day": {"used": 2, "limit": 100},
        "audio_minutes_per_day": {"used": 1.5, "limit": 60},
        "max_session_seconds": {"limit": 3600},
        "idle_timeout_seconds": {"limit": 600},
    }


@pytest.mark.django_db(transaction=True)
def test_a_check_outside_a_transaction_is_a_bug(user: Any) -> None:
    with pytest.raises(RuntimeError, match="transaction"):
        ratelimits.quota_check_turn(user=user, audio_seconds=0)


@pytest.mark.django_db
def test_default_row_is_seeded_from_settings_once(settings: Any) -> None:
    settings.RATE_LIMIT_DEFAULTS = {**GENEROUS_LIMITS, "audio_minutes_per_day": 7}
    assert ratelimits.ratelimit_default_ensure().audio_minutes_per_day == 7
    settings.RATE_LIMIT_DEFAULTS = {**GENEROUS_LIMITS, "audio_minutes_per_day": 9}
    assert ratelimits.ratelimit_default_ensure().audio_minutes_per_day == 7


# --- admin -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_usage_of_every_quota(admin_client: Any, user: Any) -> None:
    default = RateLimitPolicy.objects.create(user=None, **GENEROUS_LIMITS)
    own = policy_for(user, sessions_per_hour=4, max_concurrent_sessions=1, turns_per_day=3)
    session = open_session(user)
    add_turn(user, 48.0, session=session)
    changelist = admin_client.get(reverse("admin:conversations_ratelimitpolicy_changelist"))
    html = changelist.content.decode()
    for text in ("1 of 4", "1 of 3", "0.8 of 100", "Default (everyone else)"):
        assert text in html, text
    assert 'color:#b91c1c">1 of 1<' in html  # the one concurrent session: used up
    assert 'counted per user">—</span> of 100' in html  # the default counts nothing itself
    assert "1:00:00" in html and "10:00" in html  # max session, idle timeout

    page = admin_client.get(reverse("admin:conversations_ratelimitpolicy_change", args=[own.pk]))
    assert "turns today" in page.content.decode() and "restart at midnight" in page.content.decode()
    url = reverse("admin:conversations_ratelimitpolicy_change", args=[default.pk])
    assert "counted per user" in admin_client.get(url).content.decode()


@pytest.mark.django_db
def test_admin_add_form_starts_from_the_default(admin_client: Any, other_user: Any) -> None:
    RateLimitPolicy.objects.create(user=None, **{**GENEROUS_LIMITS, "turns_per_day": 77})
    add = reverse("admin:conversations_ratelimitpolicy_add")
    html = admin_client.get(add).content.decode()
    assert 'name="turns_per_day" value="77"' in html
    assert 'name="max_concurrent_sessions" value="100"' in html
    form = {**GENEROUS_LIMITS, "user": other_user.pk, "turns_per_day": 5}
    assert admin_client.post(add, form).status_code == 302
    assert RateLimitPolicy.objects.get(user=other_user).turns_per_day == 5


# --- races ---------------------------------------------------------------------------------

RACERS = 6


def race(calls: list[Callable[[], object]]) -> list[str]:
    """Run the calls at once, each on a thread with its own connection; outcomes sorted."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            call()
            outcomes.append("ok")
        except RateLimited:
            outcomes.append("limited")
        except Exception as err:  # noqa: BLE001 - any other outcome fails the assertion
            outcomes.append(repr(err))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sorted(outcomes)


def slowed(check: Callable[..., Any]) -> Callable[..., Any]:
    """Hold the window between counting and inserting open, as a slow database would."""

    def slow(**kwargs: Any) -> Any:
        limits = check(**kwargs)
        time.sleep(0.05)
        return limits

    return slow


@pytest.fixture
def slow_checks() -> Iterator[None]:
    with (
        mock.patch.object(
            services, "quota_check_session_open", slowed(ratelimits.quota_check_session_open)
        ),
        mock.patch.object(services, "quota_check_turn", slowed(ratelimits.quota_check_turn)),
    ):
        yield


def race_quota(user: Any, quota: str) -> list[str]:
    """``RACERS`` requests of one user at once against a quota of 1."""
    RateLimitPolicy.objects.update_or_create(user=user, defaults={**GENEROUS_LIMITS, quota: 1})
    if quota == "turns_per_day":
        sessions = [open_session(user) for _ in range(RACERS)]  # one each: no shared row lock
        return race([partial(add_turn, user, session=session) for session in sessions])
    VoiceSession.objects.filter(user=user).delete()
    return race([lambda: open_session(user)] * RACERS)


EXACTLY_ONE = ["limited"] * (RACERS - 1) + ["ok"]
RACED = ("sessions_per_hour", "max_concurrent_sessions", "turns_per_day")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("quota", RACED)
def test_race_on_postgresql_lets_exactly_one_through(
    user: Any, slow_checks: None, quota: str
) -> None:
    assert connections["default"].vendor == "postgresql"
    assert race_quota(user, quota) == EXACTLY_ONE


def sqlite_races_main() -> None:
    """Run in a subprocess with ``DATABASE_URL=sqlite:///...``: migrate, race, print JSON."""
    from django.core.management import call_command

    connection = connections["default"]
    connection.ensure_connection()
    # What serialises writers on SQLite: every transaction begins IMMEDIATE (settings).
    assert connection.vendor == "sqlite" and connection.transaction_mode == "IMMEDIATE"
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("racer")
    results = {}
    with (
        mock.patch.object(
            services, "quota_check_session_open", slowed(ratelimits.quota_check_session_open)
        ),
        mock.patch.object(services, "quota_check_turn", slowed(ratelimits.quota_check_turn)),
    ):
        for quota in RACED:
            results[quota] = race_quota(user, quota)
    print(json.dumps(results))


def test_race_on_sqlite_lets_exactly_one_through(tmp_path: Path) -> None:
    code = (
        "import django; django.setup(); "
        "from tests.conversations.test_ratelimits import sqlite_races_main; sqlite_races_main()"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "voiceapp.settings",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results == {quota: EXACTLY_ONE for quota in RACED}
