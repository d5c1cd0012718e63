"""KPI selectors: the figures of the staff dashboard and ``GET /api/kpis/``, from stored turns.

Both readers call :func:`kpi_report` so the page and the API can never disagree.

Populations (all precisely what the tests compute by hand):

* **Turns**: turns created in ``[start, end)`` whose session matches ``user``/``mode`` and
  whose transport matches ``transport``. A ``continued`` turn (the user paused, its audio
  was folded into the next turn) is left out everywhere: it is part of the next turn, not
  a turn of its own.
* **Finished turns**: counted turns that are ``completed``, ``cancelled`` or ``failed``;
  ``queued``/``running`` ones are still in flight and have no outcome yet.
* **Error rate**: failed turns / finished turns.
* **Interruption rate**: interrupted turns / turns that *could* be interrupted, i.e.
  counted turns that produced reply audio (``first_audio_ms`` set) or are finished.
  An interrupted turn is always cancelled, hence finished, so the rate lies in [0, 1].
* **Sessions**: sessions *started* in ``[start, end)`` matching ``user``/``mode`` (with a
  ``transport`` filter: only those with at least one counted turn of that transport). A
  session belongs wholly to the range it started in, so a session is never split.
  Turns per session counts each such session's non-continued turns (of that transport),
  sessions without any turn included (they count as 0: the user left without a word).
* **Session length**: ``ended_at - started_at`` of those sessions that have ended.
* **Active users**: distinct users with at least one counted turn.
* **Shares**: voice / text / REST-transport turns over all counted turns.

Percentiles use linear interpolation between closest ranks, the same definition as
PostgreSQL's ``percentile_cont`` and numpy's default, computed in Python over one query's
values: one code path with identical numbers on SQLite (``make run``) and PostgreSQL. That
holds a float per turn and stage in memory, fine up to ~1e5 turns in a range; beyond that
move the aggregation into SQL (``percentile_cont ... GROUP BY date_trunc``).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from conversations.models import Turn, VoiceSession

TIMING_FIELDS: tuple[str, ...] = Turn.TIMING_FIELDS
#: Ranges up to this long get hourly buckets in the time series, longer ones daily.
HOURLY_UP_TO = timedelta(days=2)
#: Longest range accepted: bounds the series length and the rows read.
MAX_RANGE = timedelta(days=366)
PRESETS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_PRESET = "7d"
Bucket = Literal["hour", "day"]


@dataclass(frozen=True)
class Target:
    """A product-plan goal: the figure must stay strictly below ``below``."""

    label: str
    below: float
    unit: Literal["ms", "ratio"]


#: Targets from the product plan, shown beside the figures on the dashboard.
TARGETS: dict[str, Target] = {
    "first_audio_ms_p95": Target(label="P95 first audio", below=500.0, unit="ms"),
    "error_rate": Target(label="Error rate", below=0.01, unit="ratio"),
}


@dataclass(frozen=True)
class KpiFilter:
    """What to count: turns created in ``[start, end)``, optionally one user, mode, transport."""

    start: datetime
    end: datetime
    user_id: int | None = None
    mode: str | None = None
    transport: str | None = None

    @property
    def bucket(self) -> Bucket:
        return "hour" if self.end - self.start <= HOURLY_UP_TO else "day"


@dataclass(frozen=True)
class Percentiles:
    p50: float | None
    p95: float | None
    count: int


@dataclass(frozen=True)
class TargetResult:
    label: str
    below: float
    unit: str
    value: float | None
    #: ``None`` when there is nothing to judge (no turns in the range).
    met: bool | None


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime
    turns: int
    finished: int
    failed: int
    error_rate: float | None
    timings: dict[str, Percentiles]


@dataclass(frozen=True)
class Spread:
    mean: float | None
    median: float | None
    p95: float | None
    count: int


@dataclass(frozen=True)
class KpiReport:
    filter: KpiFilter
    bucket: Bucket
    turns: int
    finished_turns: int
    failed_turns: int
    interrupted_turns: int
    interruptible_turns: int
    sessions: int
    active_users: int
    error_rate: float | None
    interruption_rate: float | None
    voice_share: float | None
    text_share: float | None
    rest_share: float | None
    turns_per_session: Spread
    session_length_s: Spread
    timings: dict[str, Percentiles]
    targets: dict[str, TargetResult]
    series: list[SeriesPoint] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float | None:
    """``percentile_cont(q)``: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percentiles_of(values: Sequence[float]) -> Percentiles:
    return Percentiles(p50=percentile(values, 0.5), p95=percentile(values, 0.95), count=len(values))


def spread_of(values: Sequence[float]) -> Spread:
    return Spread(
        mean=statistics.fmean(values) if values else None,
        median=percentile(values, 0.5),
        p95=percentile(values, 0.95),
        count=len(values),
    )


def turns_for(kpi_filter: KpiFilter) -> QuerySet[Turn]:
    """The counted turns (see the module docstring) as a queryset."""
    turns = Turn.objects.filter(
        created_at__gte=kpi_filter.start, created_at__lt=kpi_filter.end, continued=False
    )
    if kpi_filter.user_id is not None:
        turns = turns.filter(session__user_id=kpi_filter.user_id)
    if kpi_filter.mode:
        turns = turns.filter(session__mode=kpi_filter.mode)
    if kpi_filter.transport:
        turns = turns.filter(transport=kpi_filter.transport)
    return turns


def session_rows(kpi_filter: KpiFilter) -> list[tuple[int, datetime, datetime | None]]:
    """(counted turns, started_at, ended_at) of each session started in the range."""
    sessions = VoiceSession.objects.filter(
        started_at__gte=kpi_filter.start, started_at__lt=kpi_filter.end
    )
    if kpi_filter.user_id is not None:
        sessions = sessions.filter(user_id=kpi_filter.user_id)
    if kpi_filter.mode:
        sessions = sessions.filter(mode=kpi_filter.mode)
    counted = Q(turns__continued=False)
    if kpi_filter.transport:
        counted &= Q(turns__transport=kpi_filter.transport)
        same_transport = Turn.objects.filter(
            session=OuterRef("pk"), transport=kpi_filter.transport, continued=False
        )
        sessions = sessions.filter(Exists(same_transport))
    rows = sessions.order_by().annotate(n=Count("turns", filter=counted))
    return list(rows.values_list("n", "started_at", "ended_at"))


def bucket_starts(kpi_filter: KpiFilter) -> list[datetime]:
    """Every bucket overlapping the range, empty ones included, in local time."""
    step = timedelta(hours=1) if kpi_filter.bucket == "hour" else timedelta(days=1)
    current = bucket_key(kpi_filter.start, kpi_filter.bucket)
    last = timezone.make_naive(kpi_filter.end - timedelta(microseconds=1))
    starts: list[datetime] = []
    while current <= last:
        starts.append(current)
        current += step
    return starts


def bucket_key(moment: datetime, bucket: Bucket) -> datetime:
    """The naive local start of the hour or day holding ``moment`` (naive: DST-safe steps)."""
    local = timezone.make_naive(moment)
    local = local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0) if bucket == "day" else local


def timing_percentiles(rows: Iterable[dict[str, Any]]) -> dict[str, Percentiles]:
    values: dict[str, list[float]] = {name: [] for name in TIMING_FIELDS}
    for row in rows:
        for name in TIMING_FIELDS:
            if row[name] is not None:
                values[name].append(row[name])
    return {name: percentiles_of(found) for name, found in values.items()}


def series_for(kpi_filter: KpiFilter, rows: list[dict[str, Any]]) -> list[SeriesPoint]:
    grouped: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[bucket_key(row["created_at"], kpi_filter.bucket)].append(row)
    points = []
    for start in bucket_starts(kpi_filter):
        members = grouped.get(start, [])
        finished = sum(row["status"] in Turn.FINAL for row in members)
        failed = sum(row["status"] == Turn.Status.FAILED for row in members)
        points.append(
            SeriesPoint(
                start=timezone.make_aware(start),
                turns=len(members),
                finished=finished,
                failed=failed,
                error_rate=ratio(failed, finished),
                timings=timing_percentiles(members),
            )
        )
    return points


def target_results(values: dict[str, float | None]) -> dict[str, TargetResult]:
    results = {}
    for key, target in TARGETS.items():
        value = values[key]
        results[key] = TargetResult(
            label=target.label,
            below=target.below,
            unit=target.unit,
            value=value,
            met=None if value is None else value < target.below,
        )
    return results


def kpi_report(*, kpi_filter: KpiFilter) -> KpiReport:
    """Every dashboard figure for ``kpi_filter``, in two queries."""
    columns = ("session__user_id", "created_at", "status", "interrupted", "input_kind")
    rows = list(
        turns_for(kpi_filter)
        .order_by()
        .values(*columns, "transport", *TIMING_FIELDS)
        .iterator(chunk_size=2000)
    )
    finished = sum(row["status"] in Turn.FINAL for row in rows)
    failed = sum(row["status"] == Turn.Status.FAILED for row in rows)
    interruptible = [
        row for row in rows if row["status"] in Turn.FINAL or row["first_audio_ms"] is not None
    ]
    interrupted = sum(row["interrupted"] for row in interruptible)
    voice = sum(row["input_kind"] == Turn.InputKind.VOICE for row in rows)
    text = sum(row["input_kind"] == Turn.InputKind.TEXT for row in rows)
    rest = sum(row["transport"] == Turn.Transport.REST for row in rows)
    timings = timing_percentiles(rows)

    sessions = session_rows(kpi_filter)
    lengths = [(ended - started).total_seconds() for _, started, ended in sessions if ended]
    error_rate = ratio(failed, finished)
    return KpiReport(
        filter=kpi_filter,
        bucket=kpi_filter.bucket,
        turns=len(rows),
        finished_turns=finished,
        failed_turns=failed,
        interrupted_turns=interrupted,
        interruptible_turns=len(interruptible),
        sessions=len(sessions),
        active_users=len({row["session__user_id"] for row in rows}),
        error_rate=error_rate,
        interruption_rate=ratio(interrupted, len(interruptible)),
        voice_share=ratio(voice, len(rows)),
        text_share=ratio(text, len(rows)),
        rest_share=ratio(rest, len(rows)),
        turns_per_session=spread_of([float(n) for n, _, _ in sessions]),
        session_length_s=spread_of(lengths),
        timings=timings,
        targets=target_results(
            {"first_audio_ms_p95": timings["first_audio_ms"].p95, "error_rate": error_rate}
        ),
        series=series_for(kpi_filter, rows),
    )
