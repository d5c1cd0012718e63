"""KPIs: every figure against numbers worked out by hand, the API and the staff dashboard.

The fixture is small enough to compute each figure on paper; the expected values are
written literally with the arithmetic beside them. Percentiles are ``percentile_cont``:
for sorted values v[0..n-1], position (n - 1) * q, linear between the two neighbours.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from conversations.kpi_serializers import KpiReportSerializer
from conversations.kpis import KpiFilter, kpi_report, percentile
from conversations.models import Turn, VoiceSession

pytestmark = pytest.mark.django_db

COMPLETED, CANCELLED, FAILED, RUNNING, QUEUED = (
    "completed",
    "cancelled",
    "failed",
    "running",
    "queued",
)
START, END = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC)
API = "/api/kpis/"
PAGE = "/admin/voiceapp/kpis/"


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, minute, second, tzinfo=UTC)


def session(user: Any, started: datetime, ended: datetime | None, mode: str = "pipeline") -> Any:
    return VoiceSession.objects.create(user=user, mode=mode, started_at=started, ended_at=ended)


def turn(s: Any, index: int, created: datetime, status: str, **fields: Any) -> Turn:
    return Turn.objects.create(session=s, index=index, created_at=created, status=status, **fields)


@pytest.fixture
def kpi_data(django_user_model: Any) -> dict[str, Any]:
    """Alice and Bob in March 2024 (Carol only before the range).

    S1 alice pipeline 03-01 10:00-10:05 (300 s): t1 completed voice, t2 continued (folded
       into t3: never counted), t3 interrupted, t4 failed text over REST.
    S2 alice realtime 03-02 09:00-09:02 (120 s): t5 voice, t6 text.
    S3 bob pipeline 03-02 15:00, still open: t7 voice over REST, t8 running with audio,
       t9 queued text; t12 on 03-04 00:30 (after the range, but S3 started inside it).
    S4 bob pipeline 03-03 08:00-08:10 (600 s): no turn at all.
    S5 carol 02-28 and S6 alice 03-04 00:00 (the excluded end) are outside the range.
    """
    users = {
        name: django_user_model.objects.create_user(name, password=f"{name}-password-1")
        for name in ("alice", "bob", "carol")
    }
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    s1 = session(alice, at(1, 10), at(1, 10, 5))
    s2 = session(alice, at(2, 9), at(2, 9, 2), mode="realtime")
    s3 = session(bob, at(2, 15), None)
    session(bob, at(3, 8), at(3, 8, 10))
    s5 = session(carol, at(28, 12, month=2), at(28, 12, 1, month=2))
    s6 = session(alice, at(4, 0), None)
    rest, text = {"transport": "rest"}, {"input_kind": "text"}
    turn(
        s1, 0, at(1, 10, 1), COMPLETED, stt_ms=100, llm_first_token_ms=50,
        llm_first_clause_ms=80, tts_first_audio_ms=70, llm_ms=400, first_audio_ms=300,
        total_ms=900,
    )  # fmt: skip
    turn(s1, 1, at(1, 10, 2), CANCELLED, continued=True, stt_ms=999, first_audio_ms=9999)
    turn(s1, 2, at(1, 10, 3), CANCELLED, interrupted=True, stt_ms=120, first_audio_ms=450)
    turn(s1, 3, at(1, 10, 4), FAILED, error_code="llm_failed", **text, **rest)
    turn(s2, 0, at(2, 9, 0, 30), COMPLETED, stt_ms=200, first_audio_ms=700)
    turn(s2, 1, at(2, 9, 1), COMPLETED, first_audio_ms=400, **text)
    turn(s3, 0, at(2, 15, 1), COMPLETED, stt_ms=160, first_audio_ms=600, **rest)
    turn(s3, 1, at(2, 15, 2), RUNNING, stt_ms=140, first_audio_ms=350)
    turn(s3, 2, at(2, 15, 3), QUEUED, **text)
    turn(s3, 3, at(4, 0, 30), COMPLETED, first_audio_ms=420)
    turn(s5, 0, at(28, 12, month=2), COMPLETED, first_audio_ms=5000)
    turn(s6, 0, at(4, 0), FAILED)
    return users


def report(**filters: Any) -> Any:
    return kpi_report(kpi_filter=KpiFilter(start=START, end=END, **filters))


def test_percentile_is_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    # sorted 300 350 400 450 600 700: P50 at 2.5 -> 400 + .5*50; P95 at 4.75 -> 600 + .75*100
    assert percentile([700, 300, 450, 400, 600, 350], 0.5) == 425
    assert percentile([700, 300, 450, 400, 600, 350], 0.95) == pytest.approx(675)


def test_every_figure_by_hand(kpi_data: dict[str, Any], django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(2):  # the turns, the sessions: independent of the row count
        r = report()
    # counted turns: t1 t3 t4 t5 t6 t7 t8 t9 (t2 continued; t10-t12 outside the range)
    assert r.turns == 8
    assert r.finished_turns == 6  # t1 t3 t4 t5 t6 t7 (t8 running, t9 queued)
    assert r.failed_turns == 1  # t4
    assert r.error_rate == pytest.approx(1 / 6)
    assert r.interruptible_turns == 7  # the 6 finished + t8 (running, audio already sent)
    assert r.interrupted_turns == 1  # t3
    assert r.interruption_rate == pytest.approx(1 / 7)
    assert r.voice_share == pytest.approx(5 / 8)  # t1 t3 t5 t7 t8
    assert r.text_share == pytest.approx(3 / 8)  # t4 t6 t9
    assert r.rest_share == pytest.approx(2 / 8)  # t4 t7
    assert r.active_users == 2  # alice, bob (carol only outside the range)
    assert r.sessions == 4  # S1 S2 S3 S4
    # turns per session S1 3, S2 2, S3 4 (t12 counts: S3 started inside), S4 0
    tps = r.turns_per_session
    assert (tps.mean, tps.median, tps.count) == (2.25, 2.5, 4)  # 9/4; sorted 0 2 3 4 -> 2.5
    assert tps.p95 == pytest.approx(3.85)  # position 2.85 -> 3 + .85*1
    # ended sessions S1 300 s, S2 120 s, S4 600 s (S3 still open)
    length = r.session_length_s
    assert (length.median, length.mean, length.count) == (300, 340, 3)  # 1020/3 = 340
    assert length.p95 == pytest.approx(570)  # sorted 120 300 600, position 1.9 -> 300 + .9*300
    # first audio of t1 t3 t5 t6 t7 t8: 300 450 700 400 600 350 (t2's 9999 is not counted)
    first_audio = r.timings["first_audio_ms"]
    assert (first_audio.p50, first_audio.count) == (425, 6)
    assert first_audio.p95 == pytest.approx(675)
    stt = r.timings["stt_ms"]  # t1 100, t3 120, t5 200, t7 160, t8 140 (t2's 999 left out)
    assert (stt.p50, stt.count) == (140, 5)  # sorted 100 120 140 160 200
    assert stt.p95 == pytest.approx(192)  # position 3.8 -> 160 + .8*40
    for name, value in [
        ("llm_first_token_ms", 50),
        ("llm_first_clause_ms", 80),
        ("tts_first_audio_ms", 70),
        ("llm_ms", 400),
        ("total_ms", 900),
    ]:  # only t1 has these
        assert (r.timings[name].p50, r.timings[name].p95, r.timings[name].count) == (value,) * 2 + (
            1,
        )
    targets = r.targets
    assert targets["first_audio_ms_p95"].met is False  # 675 is not < 500
    assert targets["error_rate"].met is False  # 16.7 % is not < 1 %
    assert targets["error_rate"].value == pytest.approx(1 / 6)


def test_daily_series_by_hand(kpi_data: dict[str, Any]) -> None:
    r = report()
    assert r.bucket == "day"  # 3 days > 2 days
    assert [p.start for p in r.series] == [START, at(2, 0), at(3, 0)]
    day1, day2, day3 = r.series
    # 03-01: t1 t3 t4, one failed; first audio 300 450 -> P50 375, P95 300 + .95*150
    assert (day1.turns, day1.finished, day1.failed) == (3, 3, 1)
    assert day1.error_rate == pytest.approx(1 / 3)
    assert day1.timings["first_audio_ms"].p50 == 375
    assert day1.timings["first_audio_ms"].p95 == pytest.approx(442.5)
    # 03-02: t5..t9, finished t5 t6 t7; first audio 350 400 600 700 -> P50 500, P95 at 2.85
    assert (day2.turns, day2.finished, day2.failed, day2.error_rate) == (5, 3, 0, 0.0)
    assert day2.timings["first_audio_ms"].p50 == 500
    assert day2.timings["first_audio_ms"].p95 == pytest.approx(685)
    # 03-03: only S4, which has no turn: an empty bucket, not a missing one
    assert (day3.turns, day3.error_rate, day3.timings["stt_ms"].p50) == (0, None, None)


def test_hourly_series_when_two_days_or_less(kpi_data: dict[str, Any]) -> None:
    r = kpi_report(kpi_filter=KpiFilter(start=at(2, 0), end=at(3, 0)))
    assert r.bucket == "hour" and len(r.series) == 24
    assert r.series[9].start == at(2, 9) and r.series[9].turns == 2  # t5 t6
    assert r.series[15].turns == 3  # t7 t8 t9
    assert sum(p.turns for p in r.series) == r.turns == 5
    assert r.sessions == 2  # S2 S3


def test_filter_by_user(kpi_data: dict[str, Any]) -> None:
    r = report(user_id=kpi_data["bob"].pk)
    assert (r.turns, r.finished_turns, r.error_rate) == (3, 1, 0.0)  # t7 t8 t9; t7 finished
    assert r.targets["error_rate"].met is True
    assert (r.interruptible_turns, r.interruption_rate) == (2, 0.0)  # t7, t8
    assert (r.sessions, r.active_users) == (2, 1)  # S3 S4
    assert (r.turns_per_session.mean, r.turns_per_session.median) == (2, 2)  # S3 4, S4 0
    assert r.session_length_s.median == 600  # S4 only
    first_audio = r.timings["first_audio_ms"]  # 350 600
    assert (first_audio.p50, first_audio.p95) == (475, pytest.approx(587.5))  # 350 + .95*250


def test_filter_by_mode(kpi_data: dict[str, Any]) -> None:
    r = report(mode="realtime")
    assert (r.turns, r.error_rate, r.sessions, r.active_users) == (2, 0.0, 1, 1)  # t5 t6, S2
    assert r.voice_share == 0.5
    assert r.timings["first_audio_ms"].p50 == 550  # 400 700
    assert r.targets["first_audio_ms_p95"].met is False  # 400 + .95*300 = 685


def test_filter_by_transport(kpi_data: dict[str, Any]) -> None:
    r = report(transport="rest")
    assert (r.turns, r.finished_turns, r.failed_turns) == (2, 2, 1)  # t4 t7
    assert (r.error_rate, r.rest_share) == (0.5, 1.0)
    assert r.sessions == 2  # S1 S3: the sessions with a REST turn
    assert (r.turns_per_session.mean, r.turns_per_session.median) == (1, 1)
    assert r.session_length_s.count == 1  # S1 (S3 is open)


def test_filter_by_date(kpi_data: dict[str, Any]) -> None:
    r = kpi_report(kpi_filter=KpiFilter(start=START, end=at(2, 0)))
    assert (r.turns, r.sessions, r.failed_turns) == (3, 1, 1)  # t1 t3 t4 of S1
    empty = kpi_report(kpi_filter=KpiFilter(start=at(10, 0), end=at(11, 0)))
    assert (empty.turns, empty.sessions, empty.error_rate, empty.voice_share) == (0, 0, None, None)
    assert empty.targets["first_audio_ms_p95"].met is None  # nothing to judge
    assert len(empty.series) == 24 and all(p.turns == 0 for p in empty.series)


# --- GET /api/kpis/ -------------------------------------------------------------------


def api(as_user: Any = None, /, **params: str) -> Any:
    """GET /api/kpis/ with a bearer token of ``as_user`` (anonymous when None)."""
    client = APIClient()
    if as_user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(as_user)}")
    return client.get(API, params)


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("staffer", password="staff-pw-123", is_staff=True)


def test_api_returns_the_selector_numbers(kpi_data: dict[str, Any], staff: Any) -> None:
    response = api(staff, **{"from": "2024-03-01", "to": "2024-03-04"})
    assert response.status_code == 200, response.content
    body = response.json()
    expected = KpiReportSerializer(report()).data
    assert body == json.loads(JSONRenderer().render(expected))
    assert body["filter"] == {
        "from": "2024-03-01T00:00:00Z",
        "to": "2024-03-04T00:00:00Z",
        "user_id": None,
        "mode": None,
        "transport": None,
    }
    assert (body["turns"], body["sessions"], body["active_users"]) == (8, 4, 2)
    assert body["error_rate"] == pytest.approx(1 / 6)
    assert body["timings"]["first_audio_ms"] == {"p50": 425.0, "p95": 675.0, "count": 6}
    assert body["targets"]["first_audio_ms_p95"]["met"] is False
    assert [p["turns"] for p in body["series"]] == [3, 5, 0]


def test_api_filters_by_user_name_or_id_mode_and_transport(
    kpi_data: dict[str, Any], staff: Any
) -> None:
    span = {"from": "2024-03-01", "to": "2024-03-04"}
    by_name = api(staff, user="bob", **span).json()
    by_id = api(staff, user=str(kpi_data["bob"].pk), **span).json()
    assert by_name == by_id and by_name["turns"] == 3
    assert by_name["filter"]["user_id"] == kpi_data["bob"].pk
    assert api(staff, mode="realtime", **span).json()["turns"] == 2
    assert api(staff, transport="rest", **span).json()["error_rate"] == 0.5
    hourly = api(staff, **{"from": "2024-03-02T00:00:00Z", "to": "2024-03-03T00:00:00Z"})
    assert hourly.json()["bucket"] == "hour" and len(hourly.json()["series"]) == 24


def test_api_presets_end_now(staff: Any, kpi_data: dict[str, Any]) -> None:
    s = session(kpi_data["alice"], timezone.now() - timedelta(hours=30), None)
    turn(s, 0, timezone.now() - timedelta(hours=2), COMPLETED, first_audio_ms=200)
    turn(s, 1, timezone.now() - timedelta(hours=26), FAILED)
    assert api(staff, range="24h").json()["turns"] == 1
    week = api(staff).json()  # default: the last 7 days
    assert (week["turns"], week["failed_turns"]) == (2, 1)
    assert week["targets"]["first_audio_ms_p95"] == {
        "label": "P95 first audio",
        "below": 500.0,
        "unit": "ms",
        "value": 200.0,
        "met": True,
    }


def test_api_refuses_non_staff_and_anonymous(kpi_data: dict[str, Any]) -> None:
    forbidden = api(kpi_data["alice"])
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "auth_failed"
    anonymous = api()
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "auth_failed"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2024-13-01"},
        {"from": "2024-03-04", "to": "2024-03-01"},
        {"from": "2020-01-01", "to": "2024-01-01"},
        {"range": "7d", "from": "2024-03-01"},
        {"range": "1y"},
        {"mode": "telepathy"},
        {"transport": "pigeon"},
        {"user": "nobody"},
        {"user": "99999999999999999999999"},  # no bigint overflow: no such user
        {"user": "²"},  # a digit to str.isdigit, not to int()
        {"from": "0001-01-01"},  # 7 days before would not be a datetime
        {"from": "9999-12-31T22:00:00Z", "to": "9999-12-31T23:00:00Z"},
    ],
)
def test_api_bad_params(staff: Any, params: dict[str, str]) -> None:
    response = api(staff, **params)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_message"
    assert response.json()["message"]


# --- the staff dashboard ----------------------------------------------------------------


def test_dashboard_renders_the_figures_for_staff(
    admin_client: Any, kpi_data: dict[str, Any]
) -> None:
    response = admin_client.get(PAGE, {"from": "2024-03-01", "to": "2024-03-04"})
    assert response.status_code == 200
    page = response.content.decode()
    for figure in ("675 ms", "425 ms", "16.7 %", "14.3 %", "62.5 %", "25.0 %", "5:00", "9:30"):
        assert figure in page, figure
    assert page.count('<svg class="kpi-chart"') == 4
    assert "target P95 &lt; 500 ms" in page  # the target line on the first-audio chart
    assert page.count("Missed") == 2  # both targets, written out beside the colour
    assert 'href="/admin/"' in page and "KPI dashboard" in page  # breadcrumbs
    assert "<strong>admin</strong>" in page  # the admin header still greets the viewer
    assert "/api/kpis/?from=2024-03-01&amp;to=2024-03-04" in page


def test_dashboard_filters_and_met_targets(admin_client: Any, kpi_data: dict[str, Any]) -> None:
    response = admin_client.get(
        PAGE, {"from": "2024-03-01", "to": "2024-03-04", "user": "bob", "range": "7d"}
    )
    page = response.content.decode()
    assert response.status_code == 200  # typed dates win over the preset
    assert "0.0 %" in page and "Met" in page and "475 ms" in page
    assert "user <strong>bob</strong>" in page and "<strong>admin</strong>" in page
    assert '"true">Last' not in page  # no preset is active on a custom range


def test_dashboard_shows_bad_params(admin_client: Any) -> None:
    response = admin_client.get(PAGE, {"mode": "telepathy"})
    assert response.status_code == 400
    assert "could not be applied" in response.content.decode()


def test_dashboard_without_data_and_the_admin_index_link(admin_client: Any) -> None:
    page = admin_client.get(PAGE).content.decode()
    assert "No data" in page and 'aria-current="true">Last 7 days' in page
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{PAGE}"' in index and "KPI dashboard" in index


def test_dashboard_redirects_non_staff_to_the_admin_login(
    client: Any, kpi_data: dict[str, Any]
) -> None:
    anonymous = client.get(PAGE)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    client.force_login(kpi_data["alice"])
    refused = client.get(PAGE)
    assert refused.status_code == 302
    assert refused["Location"] == f"{reverse('admin:login')}?next={PAGE}"
