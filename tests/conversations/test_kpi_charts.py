"""The dashboard's SVG charts: axis scale, gaps, target line, empty state, escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conversations.kpi_charts import Line, line_chart, nice_ceiling, number, x_label

DAYS = [datetime(2024, 3, 1, tzinfo=UTC) + timedelta(days=i) for i in range(4)]


def test_nice_ceiling_and_numbers() -> None:
    assert nice_ceiling(0) == (1.0, 0.25)
    assert nice_ceiling(540) == (600, 200)  # 540 / 5 = 108: the first of 100, 200, ... >= 108
    assert nice_ceiling(1.08) == (1.25, 0.25)
    assert [number(v, "%") for v in (0, 0.25, 1, 12.4)] == ["0 %", "0.25 %", "1 %", "12 %"]
    assert number(2876.4, "ms") == "2,876 ms" and number(3, "") == "3"


def test_x_labels() -> None:
    assert x_label(DAYS[1], hourly=False, first=False) == ("Mar 02", "")
    assert x_label(DAYS[1] + timedelta(hours=13), hourly=True, first=True) == ("13:00", "Mar 02")
    assert x_label(DAYS[1] + timedelta(hours=13), hourly=True, first=False) == ("13:00", "")


def test_line_chart_breaks_lines_at_gaps_and_draws_the_target() -> None:
    svg = line_chart(
        chart_id="t",
        title="First audio <latency>",
        x=DAYS,
        hourly=False,
        lines=[Line("P95", [400.0, None, 600.0, 650.0], "#D55E00", "6 3")],
        unit="ms",
        target=500,
        target_label="target P95 < 500 ms",
    )
    assert svg.startswith('<svg class="kpi-chart"') and 'aria-labelledby="t-title"' in svg
    assert "First audio &lt;latency&gt;" in svg  # titles are escaped
    assert svg.count("<polyline") == 2  # 400 alone, then 600 -> 650: the gap is not bridged
    assert svg.count("<circle") == 3
    assert "target P95 &lt; 500 ms" in svg and 'stroke-dasharray="6 4"' in svg
    assert "Mar 04 00:00 P95: 650 ms" in svg  # a tooltip per point
    assert "No data" not in svg


def test_empty_chart_says_so_and_bars() -> None:
    empty = line_chart(
        chart_id="e", title="Turns", x=DAYS, hourly=False, lines=[], unit="", target=None
    )
    assert "No data" in empty
    bars = line_chart(
        chart_id="b",
        title="Turns",
        x=DAYS,
        hourly=False,
        lines=[Line("turns", [3.0, 0.0, 5.0, 1.0], "#56B4E9", bars=True)],
        unit="",
    )
    assert bars.count("<rect") == 1 + 3  # the legend swatch and the three non-empty days
