"""Admin for staff review: sessions with their turns and timings, turns, rate limits.

Sessions and turns are records of what happened, so they are view-only here (deletable,
e.g. for a privacy request). Rate-limit policies are what staff edit. Every changelist
gets its counts from annotations and one prefetch, so its query count does not grow with
the number of rows on the page.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from conversations.admin_actions import delete_session_users_data, delete_users_data
from conversations.models import RateLimitPolicy, Turn, VoicePreferences, VoiceSession
from conversations.ratelimits import (
    SESSION_SEEN_WINDOW,
    seconds_until_tomorrow,
    usage_annotations,
)

EMPTY = "—"
_GREY, _BLUE = "#4b5563", "#1d4ed8"
# Dark enough for white text (WCAG AA); the label is always written out as well.
BADGE_COLOURS: dict[str, str] = {
    str(Turn.Status.QUEUED): _GREY,
    str(Turn.Status.RUNNING): _BLUE,
    str(Turn.Status.COMPLETED): "#15803d",
    str(Turn.Status.CANCELLED): "#b45309",
    str(Turn.Status.FAILED): "#b91c1c",
    str(VoiceSession.Status.ACTIVE): _BLUE,
    str(VoiceSession.Status.CLOSED): _GREY,
}
TIMING_COLUMNS = (
    "stt",
    "retrieval",
    "llm_first_token",
    "llm_first_clause",
    "llm",
    "tts_first_audio",
    "first_audio",
    "total",
)


def badge(value: str, label: str) -> SafeString:
    return format_html(
        '<span style="display:inline-block;padding:0 .6em;border-radius:.8em;color:#fff;'
        'background:{};font-weight:600;white-space:nowrap">{}</span>',
        BADGE_COLOURS.get(value, _GREY),
        label,
    )


def ms(value: float | None) -> str:
    return EMPTY if value is None else f"{value:,.0f}"


def duration_text(value: timedelta | None) -> str:
    if value is None:
        return EMPTY
    hours, rest = divmod(int(value.total_seconds()), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


def count_of(queryset: QuerySet) -> Subquery:
    """``(SELECT COUNT(*) ...)`` as an annotation: one query for the whole page."""
    counted = queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Subquery(counted, output_field=IntegerField())


class ViewOnlyMixin:
    """Records of what happened: nobody adds or edits them in the admin."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class StatusBadgeMixin:
    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Turn | VoiceSession) -> SafeString:
        return badge(obj.status, obj.get_status_display())


class TimingColumnsMixin(StatusBadgeMixin):
    """Stage timings of a turn in whole milliseconds, as shown in lists and pages."""

    @admin.display(description="STT ms", ordering="stt_ms")
    def stt(self, obj: Turn) -> str:
        return ms(obj.stt_ms)

    @admin.display(description="retrieval ms", ordering="retrieval_ms")
    def retrieval(self, obj: Turn) -> str:
        return ms(obj.retrieval_ms)

    @admin.display(description="LLM first token ms", ordering="llm_first_token_ms")
    def llm_first_token(self, obj: Turn) -> str:
        return ms(obj.llm_first_token_ms)

    @admin.display(description="LLM first clause ms", ordering="llm_first_clause_ms")
    def llm_first_clause(self, obj: Turn) -> str:
        return ms(obj.llm_first_clause_ms)

    @admin.display(description="LLM ms", ordering="llm_ms")
    def llm(self, obj: Turn) -> str:
        return ms(obj.llm_ms)

    @admin.display(description="TTS first audio ms", ordering="tts_first_audio_ms")
    def tts_first_audio(self, obj: Turn) -> str:
        return ms(obj.tts_first_audio_ms)

    @admin.display(description="first audio ms", ordering="first_audio_ms")
    def first_audio(self, obj: Turn) -> str:
        return ms(obj.first_audio_ms)

    @admin.display(description="total ms", ordering="total_ms")
    def total(self, obj: Turn) -> str:
        return ms(obj.total_ms)


class TurnInline(ViewOnlyMixin, TimingColumnsMixin, admin.TabularInline):
    model = Turn
    ordering = ("index",)
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "index",
        "status_badge",
        "transcript",
        "reply_shown",
        "interrupted",
        "error_code",
        *TIMING_COLUMNS,
    )
    readonly_fields = fields

    @admin.display(description="reply (as heard)")
    def reply_shown(self, obj: Turn) -> SafeString:
        heard = Truncator(obj.heard_text).chars(300)
        if obj.interrupted and obj.reply != obj.reply_heard:
            generated = Truncator(obj.reply).chars(300)
            return format_html("{}<br><small>interrupted; generated: {}</small>", heard, generated)
        return format_html("{}", heard)


@admin.register(VoiceSession)
class VoiceSessionAdmin(ViewOnlyMixin, StatusBadgeMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "mode",
        "status_badge",
        "started_at",
        "duration",
        "turn_count",
        "error_count",
        "median_first_audio",
        "review_link",
    )
    list_select_related = ("user",)
    # The session page's "Review conversation" button: admin/conversations/voicesession/.
    actions = (delete_session_users_data,)
    list_filter = ("status", "mode", ("user", admin.RelatedOnlyFieldListFilter), "started_at")
    date_hierarchy = "started_at"
    search_fields = ("user__username", "turns__transcript")
    inlines = (TurnInline,)
    summary = ("turn_count", "error_count", "median_first_audio")
    readonly_fields = ("status_badge", "duration", *summary)
    fieldsets = (
        (None, {"fields": ("user", "mode", "status_badge", "end_reason")}),
        ("Time", {"fields": ("started_at", "ended_at", "duration")}),
        ("Turns", {"fields": summary}),
        ("Client", {"fields": ("config", "client_info", "history_start_index")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[VoiceSession]:
        errors = Q(turns__status=Turn.Status.FAILED) | Q(turns__error_code__gt="")
        timed = Turn.objects.filter(first_audio_ms__isnull=False).only(
            "id", "session_id", "first_audio_ms"
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_turns=Count("turns"),
                n_errors=Count("turns", filter=errors),
                span=ExpressionWrapper(F("ended_at") - F("started_at"), DurationField()),
            )
            .prefetch_related(Prefetch("turns", queryset=timed, to_attr="timed_turns"))
        )

    @admin.display(description="duration", ordering="span")
    def duration(self, obj: VoiceSession) -> str:
        return duration_text(getattr(obj, "span", None))

    @admin.display(description="turns", ordering="n_turns")
    def turn_count(self, obj: VoiceSession) -> int:
        return getattr(obj, "n_turns", 0)

    @admin.display(description="errors", ordering="n_errors")
    def error_count(self, obj: VoiceSession) -> int:
        return getattr(obj, "n_errors", 0)

    @admin.display(description="median first audio ms")
    def median_first_audio(self, obj: VoiceSession) -> str:
        values = [turn.first_audio_ms for turn in getattr(obj, "timed_turns", [])]
        return ms(statistics.median(values)) if values else EMPTY

    @admin.display(description="review")
    def review_link(self, obj: VoiceSession) -> SafeString:
        url = reverse("voiceapp_session_review", args=[obj.pk])
        return format_html('<a href="{}">Review</a>', url)


@admin.register(Turn)
class TurnAdmin(ViewOnlyMixin, TimingColumnsMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "session_link",
        "user",
        "index",
        "status_badge",
        "interrupted",
        "input_kind",
        "first_audio",
        "total",
        "created_at",
    )
    list_select_related = ("session__user",)
    list_filter = (
        "status",
        "interrupted",
        "input_kind",
        "created_at",
        ("session__user", admin.RelatedOnlyFieldListFilter),
    )
    date_hierarchy = "created_at"
    search_fields = ("transcript", "reply", "session__user__username")
    readonly_fields = ("status_badge", *TIMING_COLUMNS)
    fieldsets = (
        (None, {"fields": ("session", "index", "status_badge", "input_kind", "interrupted")}),
        ("Conversation", {"fields": ("transcript", "reply", "reply_heard")}),
        ("Timings (ms)", {"fields": TIMING_COLUMNS}),
        ("Audio (seconds)", {"fields": ("input_audio_seconds", "output_audio_seconds")}),
        ("Error", {"fields": ("error_code", "error_message")}),
        ("When and how", {"fields": ("created_at", "finished_at", "providers")}),
    )

    @admin.display(description="session", ordering="session")
    def session_link(self, obj: Turn) -> SafeString:
        url = reverse("admin:conversations_voicesession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session)

    @admin.display(description="user", ordering="session__user__username")
    def user(self, obj: Turn) -> str:
        return str(obj.session.user)


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class VoiceappUserAdmin(UserAdmin):
    """The stock user admin plus deleting a user's conversations (privacy requests)."""

    actions = (delete_users_data,)

    def has_voice_data_delete_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.delete_voicesession")


@admin.register(RateLimitPolicy)
class RateLimitPolicyAdmin(admin.ModelAdmin):
    """The default policy and per-user overrides; an override shows its user's usage now.

    A quota cell reads "used of limit", counted in the same windows as the checks
    (``conversations.ratelimits``) and annotated as subqueries: one query per page.
    """

    counted = (
        "sessions_per_hour",
        "max_concurrent_sessions",
        "turns_per_day",
        "audio_minutes_per_day",
    )
    timed = ("max_session_seconds", "idle_timeout_seconds")
    list_display = (
        "applies_to",
        "sessions_hour",
        "connected_now",
        "turns_today",
        "audio_today",
        "session_length",
        "idle_timeout",
        "updated_at",
    )
    list_display_links = ("applies_to",)
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    search_fields = ("user__username",)
    ordering = (F("user__username").asc(nulls_first=True),)
    readonly_fields = ("current_usage",)
    fieldsets = (
        (None, {"fields": ("user",)}),
        (
            "Quotas",
            {
                "fields": counted,
                "description": (
                    "Sessions per hour: a rolling hour; resuming a session is not a new one. "
                    "Concurrent sessions: open and seen in the last "
                    f"{SESSION_SEEN_WINDOW.seconds} s. Turns and audio minutes per day: "
                    "from midnight (TIME_ZONE)."
                ),
            },
        ),
        ("Time limits of one session (seconds)", {"fields": timed}),
        ("Current usage", {"fields": readonly_fields}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[RateLimitPolicy]:
        usage = usage_annotations(user=OuterRef("user"), now=timezone.now())
        return super().get_queryset(request).annotate(**usage)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """A new override starts from the default's values: staff change only what differs."""
        default = RateLimitPolicy.objects.filter(user__isnull=True).first()
        base = settings.RATE_LIMIT_DEFAULTS
        start = {name: getattr(default, name) if default else base[name] for name in base}
        return {**start, **super().get_changeform_initial_data(request)}

    @admin.display(description="applies to", ordering="user__username")
    def applies_to(self, obj: RateLimitPolicy) -> str:
        return str(obj.user) if obj.user_id else "Default (everyone else)"

    @admin.display(description="sessions / hour", ordering="sessions_per_hour")
    def sessions_hour(self, obj: RateLimitPolicy) -> SafeString:
        return self._cell(obj, getattr(obj, "used_sessions_hour", None), obj.sessions_per_hour)

    @admin.display(description="connected now", ordering="max_concurrent_sessions")
    def connected_now(self, obj: RateLimitPolicy) -> SafeString:
        used = getattr(obj, "used_sessions_connected", None)
        return self._cell(obj, used, obj.max_concurrent_sessions)

    @admin.display(description="turns today", ordering="turns_per_day")
    def turns_today(self, obj: RateLimitPolicy) -> SafeString:
        return self._cell(obj, getattr(obj, "used_turns_today", None), obj.turns_per_day)

    @admin.display(description="audio minutes today", ordering="audio_minutes_per_day")
    def audio_today(self, obj: RateLimitPolicy) -> SafeString:
        seconds = getattr(obj, "used_audio_seconds_today", None)
        used = None if seconds is None else round(seconds / 60, 1)
        return self._cell(obj, used, obj.audio_minutes_per_day)

    @admin.display(description="max session", ordering="max_session_seconds")
    def session_length(self, obj: RateLimitPolicy) -> str:
        return duration_text(timedelta(seconds=obj.max_session_seconds))

    @admin.display(description="idle timeout", ordering="idle_timeout_seconds")
    def idle_timeout(self, obj: RateLimitPolicy) -> str:
        return duration_text(timedelta(seconds=obj.idle_timeout_seconds))

    @admin.display(description="current usage")
    def current_usage(self, obj: RateLimitPolicy) -> str:
        if obj.pk is None:
            return "Shown once the policy is saved."
        if not obj.user_id:
            return (
                "The default applies to every user without a policy of their own. Usage is "
                "counted per user: each user's policy shows theirs."
            )
        rows = (
            (self.sessions_hour(obj), "sessions started in the last hour"),
            (self.connected_now(obj), "sessions connected now"),
            (self.turns_today(obj), "turns today"),
            (self.audio_today(obj), "minutes of audio today"),
        )
        items = format_html_join("", "<li>{} {}</li>", rows)
        reset = duration_text(timedelta(seconds=int(seconds_until_tomorrow(timezone.now()))))
        return format_html("<ul>{}</ul>Daily counts restart at midnight, in {}.", items, reset)

    @staticmethod
    def _cell(obj: RateLimitPolicy, used: float | None, limit: int) -> SafeString:
        """Reads "2 of 5", red once used up; the default policy counts nothing itself."""
        if not obj.user_id or used is None:
            return format_html('<span title="counted per user">{}</span> of {}', EMPTY, limit)
        if used >= limit:
            return format_html(
                '<strong style="color:#b91c1c">{} of {}</strong>', f"{used:g}", limit
            )
        return format_html("{} of {}", f"{used:g}", limit)


@admin.register(VoicePreferences)
class VoicePreferencesAdmin(admin.ModelAdmin):
    """What each user chose on the voice page; staff may correct a setting that fails."""

    list_display = ("user", "vad", "voice", "speed", "input_language", "mode", "updated_at")
    list_filter = ("vad", "mode")
    search_fields = ("user__username",)
    autocomplete_fields = ("user",)
    readonly_fields = ("updated_at",)
