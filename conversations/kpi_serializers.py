"""Serializers of the KPI query and report, shared by ``GET /api/kpis/`` and the dashboard.

The query serializer is the single parser of ``from``/``to``/``range``/``user``/``mode``/
``transport``, so the page's filter form and the API accept exactly the same things; the
report serializers describe every figure for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import serializers

from conversations.kpis import (
    DEFAULT_PRESET,
    MAX_RANGE,
    PRESETS,
    TARGETS,
    TIMING_FIELDS,
    KpiFilter,
)
from conversations.models import Turn, VoiceSession

CUSTOM = "custom"
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


class FromFieldMixin(serializers.Serializer):
    """Publishes the field declared as ``from_`` under the name ``from`` (a Python keyword)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {("from" if name == "from_" else name): value for name, value in fields.items()}


def within_bounds(value: datetime) -> datetime:
    """Far-off dates would overflow ``datetime`` while the range and its buckets are built."""
    if not EARLIEST <= value < LATEST:
        raise serializers.ValidationError(f"must lie between {EARLIEST:%Y} and {LATEST:%Y}")
    return value


class KpiQuerySerializer(FromFieldMixin):
    range = serializers.ChoiceField(
        choices=[*PRESETS, CUSTOM],
        required=False,
        help_text="A preset ending now (24h, 7d, 30d) instead of from/to. Default: 7d.",
    )
    from_ = serializers.DateTimeField(
        required=False,
        help_text="Start, included: ISO 8601 date or date-time (a bare date is midnight, "
        "server time zone). Default: 7 days before `to`.",
    )
    to = serializers.DateTimeField(
        required=False, help_text="End, excluded: ISO 8601 date or date-time. Default: now."
    )
    user = serializers.CharField(
        required=False, max_length=150, help_text="Only this user: id or username."
    )
    mode = serializers.ChoiceField(choices=VoiceSession.Mode.choices, required=False)
    transport = serializers.ChoiceField(choices=Turn.Transport.choices, required=False)

    def validate_from(self, value: datetime) -> datetime:
        return within_bounds(value)

    def validate_to(self, value: datetime) -> datetime:
        return within_bounds(value)

    def validate_user(self, value: str) -> Any:
        """An id first, then a username (a username may be all digits)."""
        users = get_user_model().objects
        is_id = value.isascii() and value.isdigit() and len(value) <= 18  # fits a bigint
        found = users.filter(pk=int(value)).first() if is_id else None
        found = found or users.filter(**{get_user_model().USERNAME_FIELD: value}).first()
        if found is None:
            raise serializers.ValidationError("no such user")
        return found

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = timezone.now()
        start, end = attrs.get("from"), attrs.get("to")
        preset = attrs.get("range") or (CUSTOM if start or end else DEFAULT_PRESET)
        if preset != CUSTOM:
            if start or end:
                raise serializers.ValidationError({"range": "give a preset or from/to, not both"})
            start, end = now - PRESETS[preset], now
        end = end or now
        start = start or end - PRESETS[DEFAULT_PRESET]
        if start >= end:
            raise serializers.ValidationError({"to": "must be later than from"})
        if end - start > MAX_RANGE:
            longest = f"a range spans {MAX_RANGE.days} days at most"
            raise serializers.ValidationError({"to": longest})
        user = attrs.get("user")
        attrs["range"] = preset
        attrs["filter"] = KpiFilter(
            start=start,
            end=end,
            user_id=user.pk if user else None,
            mode=attrs.get("mode"),
            transport=attrs.get("transport"),
        )
        return attrs


def kpi_query(params: Mapping[str, str]) -> KpiQuerySerializer:
    """A validated query; empty values (an untouched form field) count as absent.

    Raises ``rest_framework.exceptions.ValidationError`` (→ 400 ``bad_message``).
    """
    data = {key: value for key, value in params.items() if value != ""}
    query = KpiQuerySerializer(data=data)
    query.is_valid(raise_exception=True)
    return query


class KpiFilterSerializer(FromFieldMixin):
    from_ = serializers.DateTimeField(source="start")
    to = serializers.DateTimeField(source="end")
    user_id = serializers.IntegerField(allow_null=True)
    mode = serializers.CharField(allow_null=True)
    transport = serializers.CharField(allow_null=True)


class PercentilesSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True, help_text="Median, ms.")
    p95 = serializers.FloatField(allow_null=True, help_text="95th percentile, ms.")
    count = serializers.IntegerField(help_text="Turns with this timing.")


class SpreadSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()


class TargetResultSerializer(serializers.Serializer):
    label = serializers.CharField()
    below = serializers.FloatField(help_text="The figure must stay strictly below this.")
    unit = serializers.ChoiceField(choices=["ms", "ratio"])
    value = serializers.FloatField(allow_null=True)
    met = serializers.BooleanField(allow_null=True, help_text="null: no data to judge.")


# One field per stage timing and per target, built from the lists the selector uses so
# the documented shape follows them.
TimingsSerializer = type(
    "TimingsSerializer",
    (serializers.Serializer,),
    {name: PercentilesSerializer() for name in TIMING_FIELDS},
)
TargetsSerializer = type(
    "TargetsSerializer",
    (serializers.Serializer,),
    {key: TargetResultSerializer() for key in TARGETS},
)


class SeriesPointSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Start of the hour or day.")
    turns = serializers.IntegerField()
    finished = serializers.IntegerField()
    failed = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    timings = TimingsSerializer()


class KpiReportSerializer(serializers.Serializer):
    filter = KpiFilterSerializer()
    bucket = serializers.ChoiceField(
        choices=["hour", "day"], help_text="Series step: hourly for ranges up to 2 days."
    )
    turns = serializers.IntegerField(
        help_text="Turns created in the range, continued ones left out."
    )
    finished_turns = serializers.IntegerField(help_text="Completed, cancelled or failed.")
    failed_turns = serializers.IntegerField()
    interrupted_turns = serializers.IntegerField()
    interruptible_turns = serializers.IntegerField(
        help_text="Turns that produced reply audio or finished."
    )
    sessions = serializers.IntegerField(help_text="Sessions started in the range.")
    active_users = serializers.IntegerField(help_text="Users with at least one turn.")
    error_rate = serializers.FloatField(allow_null=True, help_text="failed / finished turns.")
    interruption_rate = serializers.FloatField(
        allow_null=True, help_text="interrupted / interruptible turns."
    )
    voice_share = serializers.FloatField(allow_null=True)
    text_share = serializers.FloatField(allow_null=True)
    rest_share = serializers.FloatField(allow_null=True, help_text="Share of HTTP-fallback turns.")
    turns_per_session = SpreadSerializer()
    session_length_s = SpreadSerializer(help_text="Seconds, sessions that have ended.")
    timings = TimingsSerializer()
    targets = TargetsSerializer()
    series = SeriesPointSerializer(many=True)
