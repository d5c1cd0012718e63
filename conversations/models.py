"""Sessions, turns with their stage timings, and per-user rate limits."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone


class VoiceSession(models.Model):
    class Mode(models.TextChoices):
        PIPELINE = "pipeline", "STT → LLM → TTS pipeline"
        REALTIME = "realtime", "OpenAI Realtime relay"

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        CLOSED = "closed", "closed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="voice_sessions"
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PIPELINE)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    client_info = models.JSONField(default=dict, blank=True)
    #: Refreshed while a connection holds the session; a session not seen for a while
    #: no longer counts as concurrent even if its server died without closing it.
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    # History before this turn index is forgotten (``session.reset``).
    history_start_index = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "started_at"])]

    def __str__(self) -> str:
        return f"Session {self.pk} ({self.user}, {self.started_at:%Y-%m-%d %H:%M})"

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class Turn(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        COMPLETED = "completed", "completed"
        CANCELLED = "cancelled", "cancelled"
        FAILED = "failed", "failed"

    # The checked status machine: a turn only ever moves along these edges.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
        Status.RUNNING: frozenset({Status.COMPLETED, Status.CANCELLED, Status.FAILED}),
        Status.COMPLETED: frozenset(),
        Status.CANCELLED: frozenset(),
        Status.FAILED: frozenset(),
    }
    FINAL = frozenset({Status.COMPLETED, Status.CANCELLED, Status.FAILED})

    class InputKind(models.TextChoices):
        VOICE = "voice", "voice"
        TEXT = "text", "text"

    session = models.ForeignKey(VoiceSession, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)

    class Transport(models.TextChoices):
        WEBSOCKET = "websocket", "WebSocket"
        REST = "rest", "HTTP fallback"

    input_kind = models.CharField(max_length=8, choices=InputKind.choices, default=InputKind.VOICE)
    transport = models.CharField(
        max_length=16, choices=Transport.choices, default=Transport.WEBSOCKET
    )
    transcript = models.TextField(blank=True)
    reply = models.TextField(blank=True, help_text="Everything the assistant generated.")
    reply_heard = models.TextField(
        blank=True,
        help_text="What the user actually heard; differs from the reply when interrupted.",
    )
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    interrupted = models.BooleanField(default=False)
    continued = models.BooleanField(
        default=False,
        help_text="The user went on speaking before the reply; the next turn holds this audio.",
    )
    input_audio_seconds = models.FloatField(default=0)
    output_audio_seconds = models.FloatField(default=0)
    stt_ms = models.FloatField(null=True, blank=True)
    retrieval_ms = models.FloatField(
        null=True, blank=True, help_text="Knowledge-base search for the transcript."
    )
    llm_first_token_ms = models.FloatField(null=True, blank=True)
    llm_first_clause_ms = models.FloatField(
        null=True, blank=True, help_text="LLM start → first clause handed to TTS."
    )
    llm_ms = models.FloatField(null=True, blank=True)
    tts_first_audio_ms = models.FloatField(null=True, blank=True)
    first_audio_ms = models.FloatField(null=True, blank=True)
    total_ms = models.FloatField(null=True, blank=True)
    providers = models.JSONField(default=dict, blank=True)
    #: Knowledge-base passages the reply was grounded in, best first (``reply.done``).
    sources = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    TIMING_FIELDS = (
        "stt_ms",
        "retrieval_ms",
        "llm_first_token_ms",
        "llm_first_clause_ms",
        "llm_ms",
        "tts_first_audio_ms",
        "first_audio_ms",
        "total_ms",
    )

    class Meta:
        ordering = ["session", "index"]
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="turn_unique_index")
        ]

    def __str__(self) -> str:
        return f"Turn {self.index} of session {self.session_id} ({self.status})"

    @classmethod
    def can_transition(cls, old: str, new: str) -> bool:
        return new in cls.TRANSITIONS.get(old, frozenset())

    @property
    def heard_text(self) -> str:
        """The assistant's words as they belong in the conversation history."""
        return self.reply_heard if self.interrupted else self.reply

    def timings(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in self.TIMING_FIELDS}


class RateLimitPolicy(models.Model):
    """Limits for one user, or the default for everyone when ``user`` is empty."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rate_limit_policy",
        help_text="Leave empty for the default policy that applies to everyone else.",
    )
    sessions_per_hour = models.PositiveIntegerField()
    max_session_seconds = models.PositiveIntegerField()
    idle_timeout_seconds = models.PositiveIntegerField()
    turns_per_day = models.PositiveIntegerField()
    audio_minutes_per_day = models.PositiveIntegerField(
        default=60, help_text="Minutes of user audio (speech sent in) per day."
    )
    max_concurrent_sessions = models.PositiveIntegerField(
        default=3, help_text="Sessions one user may have connected at the same time."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "rate limit policy"
        verbose_name_plural = "rate limit policies"
        constraints = [
            # One default row at most (NULLs are distinct in a plain unique index).
            models.UniqueConstraint(
                Coalesce("user", Value(0)), name="ratelimit_one_per_user_or_default"
            )
        ]

    def __str__(self) -> str:
        return f"Limits for {self.user}" if self.user_id else "Default limits"


def _turn_audio_path(instance: TurnAudio, filename: str) -> str:
    return f"turn-audio/{instance.turn.session_id}/{instance.turn_id}-{instance.kind}-{filename}"


class TurnAudio(models.Model):
    """A turn's audio, kept only when the operator turns retention on.

    Files live under ``MEDIA_ROOT`` and are served to staff only, through an
    authenticated view; ``expires_at`` drives their deletion.
    """

    class Kind(models.TextChoices):
        INPUT = "input", "user speech"
        OUTPUT = "output", "assistant reply"

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="audio")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    file = models.FileField(upload_to=_turn_audio_path)
    content_type = models.CharField(max_length=32, default="audio/wav")
    seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["turn", "kind"], name="turnaudio_one_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.turn}"


class VoicePreferences(models.Model):
    """A user's voice page settings, applied to each new session the page opens.

    Kept on the server so they follow the user from one browser or device to the next.
    The values are the WebSocket's session options (PROTOCOL.md), validated the same way.
    """

    class Vad(models.TextChoices):
        SERVER = "server", "hands-free (the server hears when you stop)"
        CLIENT = "client", "push-to-talk"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="voice_preferences"
    )
    voice = models.CharField(max_length=64, blank=True, help_text="Empty: the server default.")
    speed = models.FloatField(default=1.0)
    input_language = models.CharField(max_length=16, default="en")
    output_language = models.CharField(max_length=16, default="en")
    mode = models.CharField(
        max_length=16, choices=VoiceSession.Mode.choices, default=VoiceSession.Mode.PIPELINE
    )
    vad = models.CharField(max_length=8, choices=Vad.choices, default=Vad.SERVER)
    updated_at = models.DateTimeField(auto_now=True)

    #: The fields a user sets; each is a WebSocket session option of the same name.
    OPTION_FIELDS = ("voice", "speed", "input_language", "output_language", "mode", "vad")

    class Meta:
        verbose_name = "voice preferences"
        verbose_name_plural = "voice preferences"

    def __str__(self) -> str:
        return f"Voice preferences of {self.user}"

    def options(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.OPTION_FIELDS}
