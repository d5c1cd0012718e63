"""Server-rendered SVG charts for the KPI dashboard: no JavaScript, no CDN, no build step.

A chart is a function of its numbers, so it renders the same in the admin, in a saved
page and in a screenshot. Lines are told apart by dash pattern as well as colour, the
target is a labelled line, every point carries a native tooltip (``<title>``), and the
page shows the same numbers in a table for readers who cannot see the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 250
LEFT, RIGHT, TOP, BOTTOM = 60, 18, 30, 40
CHAR_PX = 6.8  # rough width of a 12px label character, for the legend and the axis
TARGET_COLOUR = "#b91c1c"


@dataclass(frozen=True)
class Line:
    label: str
    values: Sequence[float | None]
    colour: str
    dash: str = ""
    bars: bool = False


def nice_ceiling(value: float) -> tuple[float, float]:
    """An axis maximum ≥ value and its tick step, from 1, 2, 2.5, 5 times 10^k (about 5 ticks)."""
    if value <= 0:
        return 1.0, 0.25
    rough = value / 5
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough)
    return step * math.ceil(value / step - 1e-9), step


def c(value: float) -> str:
    """A coordinate as text (format_html escapes its arguments, so numbers go in as text)."""
    return f"{value:.1f}"


def number(value: float, unit: str) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if value < 10 else f"{value:,.0f}"
    return f"{text} {unit}" if unit else text


def x_label(moment: datetime, hourly: bool, first: bool) -> tuple[str, str]:
    """(main line, second line): hours show the date under midnight and the first label."""
    if not hourly:
        return moment.strftime("%b %d"), ""
    date = moment.strftime("%b %d") if first or moment.hour == 0 else ""
    return moment.strftime("%H:%M"), date


@dataclass(frozen=True)
class Frame:
    """Maps bucket indexes and values to SVG coordinates; each bucket is a band."""

    buckets: int
    y_max: float

    @property
    def band(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(self.buckets, 1)

    def px(self, index: int) -> float:
        return LEFT + self.band * (index + 0.5)

    def py(self, value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / self.y_max)


def line_chart(
    *,
    chart_id: str,
    title: str,
    x: Sequence[datetime],
    hourly: bool,
    lines: Sequence[Line],
    unit: str,
    target: float | None = None,
    target_label: str = "",
) -> SafeString:
    """One SVG: y axis with gridlines, x labels, legend on top, lines or bars, target line."""
    found = [v for line in lines for v in line.values if v is not None]
    highest = max([*found, target or 0.0])
    y_max, step = nice_ceiling(highest * 1.08)
    frame = Frame(buckets=len(x), y_max=y_max)
    parts: list[SafeString] = [
        format_html('<title id="{}-title">{}</title>', chart_id, title),
        *_grid(frame, step, unit),
        *_x_axis(frame, x, hourly),
    ]
    for line in lines:
        parts.extend(_bars(frame, line, x, unit) if line.bars else _line(frame, line, x, unit))
    if target is not None:
        parts.append(_target(frame, target, target_label))
    parts.extend(_legend(lines, with_target=target is not None))
    if not found:
        parts.append(
            format_html(
                '<text class="kpi-empty" x="{}" y="{}" text-anchor="middle">No data</text>',
                (LEFT + WIDTH - RIGHT) / 2,
                (TOP + HEIGHT - BOTTOM) / 2,
            )
        )
    return format_html(
        '<svg class="kpi-chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title" '
        'xmlns="http://www.w3.org/2000/svg">{}</svg>',
        WIDTH,
        HEIGHT,
        chart_id,
        mark_safe("".join(parts)),  # every part was built with format_html
    )


def _grid(frame: Frame, step: float, unit: str) -> list[SafeString]:
    ticks = [step * k for k in range(round(frame.y_max / step) + 1)]
    return [
        format_html(
            '<line class="kpi-grid" x1="{}" x2="{}" y1="{y}" y2="{y}"/>'
            '<text class="kpi-tick" x="{}" y="{y}" dy="4" text-anchor="end">{}</text>',
            LEFT,
            WIDTH - RIGHT,
            LEFT - 6,
            number(tick, unit),
            y=c(frame.py(tick)),
        )
        for tick in ticks
    ]


def _x_axis(frame: Frame, x: Sequence[datetime], hourly: bool) -> list[SafeString]:
    """Every k-th bucket labelled, k chosen so labels never overlap."""
    every = max(1, math.ceil((6 if hourly else 7) * CHAR_PX * 1.4 / frame.band))
    parts = []
    for i in range(0, len(x), every):
        main, second = x_label(x[i], hourly, first=i == 0)
        parts.append(
            format_html(
                '<text class="kpi-tick" x="{x}" y="{}" text-anchor="middle">{}'
                '<tspan x="{x}" dy="13">{}</tspan></text>',
                HEIGHT - BOTTOM + 16,
                main,
                second,
                x=c(frame.px(i)),
            )
        )
    return parts


def _tooltip(moment: datetime, line: Line, value: float, unit: str) -> str:
    return f"{moment:%b %d %H:%M} {line.label}: {number(value, unit)}"


def _line(frame: Frame, line: Line, x: Sequence[datetime], unit: str) -> list[SafeString]:
    """Segments through consecutive known values; a gap where a bucket has no data."""
    segments: list[list[str]] = [[]]
    markers = []
    radius = 2.6 if len(x) <= 60 else 1.4
    for i, value in enumerate(line.values):
        if value is None:
            segments.append([])
            continue
        segments[-1].append(f"{frame.px(i)},{frame.py(value)}")
        markers.append(
            format_html(
                '<circle cx="{}" cy="{}" r="{}" fill="{}"><title>{}</title></circle>',
                c(frame.px(i)),
                c(frame.py(value)),
                radius,
                line.colour,
                _tooltip(x[i], line, value, unit),
            )
        )
    paths = format_html_join(
        "",
        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2" '
        'stroke-dasharray="{}" stroke-linejoin="round"/>',
        ((" ".join(points), line.colour, line.dash) for points in segments if points),
    )
    return [paths, *markers]


def _bars(frame: Frame, line: Line, x: Sequence[datetime], unit: str) -> list[SafeString]:
    width = max(frame.band * 0.7, 1.0)
    return [
        format_html(
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            c(frame.px(i) - width / 2),
            c(frame.py(value)),
            c(width),
            c(frame.py(0) - frame.py(value)),
            line.colour,
            _tooltip(x[i], line, value, unit),
        )
        for i, value in enumerate(line.values)
        if value
    ]


def _target(frame: Frame, target: float, label: str) -> SafeString:
    return format_html(
        '<line x1="{}" x2="{}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="1.5" '
        'stroke-dasharray="6 4"/><text class="kpi-target-label" x="{}" y="{y}" dy="-5" '
        'text-anchor="end" fill="{colour}">{}</text>',
        LEFT,
        WIDTH - RIGHT,
        WIDTH - RIGHT - 4,
        label,
        y=c(frame.py(target)),
        colour=TARGET_COLOUR,
    )


def _legend(lines: Sequence[Line], *, with_target: bool) -> list[SafeString]:
    """Swatches on the top row: a bar, or a line with the series' own dash pattern."""
    entries = [(line.label, line.colour, line.dash, line.bars) for line in lines]
    if with_target:
        entries.append(("target", TARGET_COLOUR, "6 4", False))
    parts, left = [], float(LEFT)
    for label, colour, dash, bars in entries:
        if bars:
            swatch = format_html(
                '<rect x="{}" y="8" width="18" height="10" fill="{}"/>', c(left), colour
            )
        else:
            swatch = format_html(
                '<line x1="{}" x2="{}" y1="13" y2="13" stroke="{}" stroke-width="2.5" '
                'stroke-dasharray="{}"/>',
                c(left),
                c(left + 18),
                colour,
                dash,
            )
        parts.append(swatch)
        parts.append(
            format_html('<text class="kpi-legend" x="{}" y="17">{}</text>', c(left + 23), label)
        )
        left += 23 + len(label) * CHAR_PX + 18
    return parts
