"""The staff KPI dashboard at ``/admin/voiceapp/kpis/``: figures, targets and SVG charts.

Same parser and selector as ``GET /api/kpis/``; this module only turns the report into
cards, a stage table and charts. A missed target is shown by colour *and* by a word and
an icon, so it reads without colour too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from rest_framework.exceptions import ValidationError

from conversations.kpi_charts import Line, line_chart
from conversations.kpi_serializers import kpi_query
from conversations.kpis import TARGETS, KpiReport, kpi_report
from conversations.models import Turn, VoiceSession

STAGES: dict[str, str] = {
    "stt_ms": "Speech-to-text",
    "retrieval_ms": "Knowledge-base search",
    "llm_first_token_ms": "LLM first token",
    "llm_first_clause_ms": "LLM first clause",
    "llm_ms": "LLM, whole reply",
    "tts_first_audio_ms": "TTS first audio",
    "first_audio_ms": "First audio (commit to first byte)",
    "total_ms": "Whole turn",
}
#: The stages on the path to the first audio byte, charted together (Okabe-Ito colours).
CHARTED_STAGES = (
    ("stt_ms", "#0072B2", ""),
    ("llm_first_token_ms", "#E69F00", "5 3"),
    ("llm_first_clause_ms", "#009E73", "2 3"),
    ("tts_first_audio_ms", "#CC79A7", "8 3 2 3"),
)
PRESET_LABELS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
DASH = "—"


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    detail: str = ""
    target: str = ""
    #: True met, False missed, None: no target or nothing to judge yet.
    met: bool | None = None


def ms(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f} ms"


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f} %"


def clock(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def figure_cards(report: KpiReport) -> list[Card]:
    first_audio = report.timings["first_audio_ms"]
    fa_target, err_target = report.targets["first_audio_ms_p95"], report.targets["error_rate"]
    per_session, length = report.turns_per_session, report.session_length_s
    mean = DASH if per_session.mean is None else f"{per_session.mean:.1f}"
    median = DASH if per_session.median is None else f"{per_session.median:g}"
    return [
        Card(
            "P95 first audio",
            ms(first_audio.p95),
            f"P50 {ms(first_audio.p50)} · {first_audio.count} turns with audio",
            f"< {TARGETS['first_audio_ms_p95'].below:.0f} ms",
            fa_target.met,
        ),
        Card(
            "Error rate",
            pct(report.error_rate),
            f"{report.failed_turns} failed of {report.finished_turns} finished turns",
            f"< {TARGETS['error_rate'].below * 100:g} %",
            err_target.met,
        ),
        Card(
            "Interruption rate",
            pct(report.interruption_rate),
            f"{report.interrupted_turns} of {report.interruptible_turns} turns with audio "
            "or finished",
        ),
        Card("Turns", f"{report.turns:,}", f"{report.finished_turns:,} finished"),
        Card("Sessions", f"{report.sessions:,}", f"{mean} turns per session, median {median}"),
        Card("Active users", f"{report.active_users:,}", "users with at least one turn"),
        Card(
            "Session length",
            clock(length.median),
            f"median · P95 {clock(length.p95)} · {length.count} ended sessions",
        ),
        Card("Voice turns", pct(report.voice_share), f"text {pct(report.text_share)}"),
        Card("HTTP fallback", pct(report.rest_share), "of turns came over REST"),
    ]


def charts(report: KpiReport) -> list[tuple[str, SafeString]]:
    x = [timezone.localtime(point.start) for point in report.series]
    hourly = report.bucket == "hour"
    first_audio = [point.timings["first_audio_ms"] for point in report.series]
    target_ms = TARGETS["first_audio_ms_p95"].below
    stage_lines = [
        Line(STAGES[name], [p.timings[name].p50 for p in report.series], colour, dash)
        for name, colour, dash in CHARTED_STAGES
    ]
    errors = [None if p.error_rate is None else p.error_rate * 100 for p in report.series]
    err_target = TARGETS["error_rate"].below * 100
    specs = [
        (
            "First audio latency",
            "first-audio",
            [
                Line("P50", [t.p50 for t in first_audio], "#0072B2"),
                Line("P95", [t.p95 for t in first_audio], "#D55E00", "6 3"),
            ],
            "ms",
            target_ms,
            f"target P95 < {target_ms:.0f} ms",
        ),
        ("Stage timings, P50", "stages", stage_lines, "ms", None, ""),
        (
            "Error rate",
            "errors",
            [Line("failed / finished", errors, "#D55E00")],
            "%",
            err_target,
            f"target < {err_target:g} %",
        ),
        (
            "Turns",
            "turns",
            [Line("turns", [float(p.turns) for p in report.series], "#56B4E9", bars=True)],
            "",
            None,
            "",
        ),
    ]
    return [
        (
            title,
            line_chart(
                chart_id=f"kpi-{key}",
                title=title,
                x=x,
                hourly=hourly,
                lines=lines,
                unit=unit,
                target=target,
                target_label=label,
            ),
        )
        for title, key, lines, unit, target, label in specs
    ]


def series_rows(report: KpiReport) -> list[tuple[str, int, str, str, str]]:
    """The charted numbers as table rows, for readers who cannot see the charts."""
    when = "%b %d %H:%M" if report.bucket == "hour" else "%b %d, %Y"
    return [
        (
            f"{timezone.localtime(p.start):{when}}",
            p.turns,
            ms(p.timings["first_audio_ms"].p50),
            ms(p.timings["first_audio_ms"].p95),
            pct(p.error_rate),
        )
        for p in report.series
    ]


def dashboard_params(request: HttpRequest) -> dict[str, str]:
    """The query as the API takes it; dates typed into the form win over a preset."""
    params = {key: value for key, value in request.GET.items() if value != ""}
    if "from" in params or "to" in params:
        params.pop("range", None)
    return params


@staff_member_required
def kpi_dashboard(request: HttpRequest) -> HttpResponse:
    params = dashboard_params(request)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "KPI dashboard",
        "params": params,
        "modes": VoiceSession.Mode.choices,
        "transports": Turn.Transport.choices,
        "usernames": get_user_model()
        .objects.filter(voice_sessions__isnull=False)
        .distinct()
        .order_by("username")
        .values_list("username", flat=True)[:500],
    }
    try:
        query = kpi_query(params)
    except ValidationError as err:
        context["errors"] = err.detail
        return render(request, "admin/voiceapp/kpis.html", context, status=400)
    data = query.validated_data
    report = kpi_report(kpi_filter=data["filter"])
    kept: dict[str, str] = {k: params[k] for k in ("user", "mode", "transport") if k in params}
    context.update(
        report=report,
        preset=data["range"],
        filter_user=data.get("user"),
        start=timezone.localtime(report.filter.start),
        end=timezone.localtime(report.filter.end),
        cards=figure_cards(report),
        stages=[
            (label, ms(t.p50), ms(t.p95), t.count)
            for name, label in STAGES.items()
            for t in [report.timings[name]]
        ],
        charts=charts(report),
        rows=series_rows(report),
        api_url=f"{reverse('api_kpis')}?{urlencode(params)}",
        preset_links=[
            (label, "?" + urlencode({**kept, "range": key}), key == data["range"])
            for key, label in PRESET_LABELS.items()
        ],
    )
    return render(request, "admin/voiceapp/kpis.html", context)
