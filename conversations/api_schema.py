"""Wire shapes of the REST API: request and answer serializers, and the error responses.

They parse what the views take and describe, for ``/api/schema/``, everything the views
answer — errors included, all ``{"code","message"}`` — so the OpenAPI document is the
contract a REST client can be generated from.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers

from conversations.models import Turn, VoiceSession
from realtime.protocol import (
    INPUT_FORMATS,
    INPUT_SAMPLE_RATES,
    OUTPUT_FORMATS,
    VAD_MODES,
)
from voiceapp.errors import ErrorCode

MAX_ID = 2**63 - 1
#: Every code an error may carry (voiceapp.errors.ErrorCode), as the schema's enum.
ERROR_CODES = [str(code) for code in ErrorCode]


# --- errors ------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error the API answers. Optional members appear where they apply."""

    code = serializers.ChoiceField(choices=ERROR_CODES)
    message = serializers.CharField()
    retry_after = serializers.IntegerField(
        required=False, help_text="`rate_limited` only: seconds until a retry can succeed."
    )
    turn_id = serializers.IntegerField(
        required=False, help_text="The stored turn, when the failure happened in a turn."
    )
    session_id = serializers.IntegerField(required=False)
    fields = serializers.DictField(
        required=False, help_text="`bad_message` from form validation: the problem per field."
    )


ERROR_DESCRIPTIONS = {
    400: "`bad_message` (missing, doubled or invalid fields) or `bad_audio` (empty, "
    "undecodable or silent audio; no words recognised)",
    401: "`auth_failed`: no, invalid or expired access token",
    403: "`auth_failed`: not allowed (staff only)",
    404: "`session_not_found`: no such session among the user's own",
    413: "`too_large`: upload over `MAX_UPLOAD_BYTES`, audio over `MAX_UTTERANCE_SECONDS`, "
    "or text over `MAX_TEXT_CHARS`",
    429: "`rate_limited`: a quota is used up; `retry_after` and the `Retry-After` header "
    "say when to try again",
    502: "`stt_failed`, `llm_failed`, `tts_failed` or `internal`: a pipeline stage failed; "
    "the turn is stored failed",
    503: "`busy`: no worker took the turn in time; the turn is stored failed",
    504: "`timeout`: a stage or the whole turn ran out of time; the turn is stored failed",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """``extend_schema(responses=...)`` entries for these HTTP statuses."""
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in codes
    }


def error_bodies_hook(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Postprocessing hook: a documented 4xx/5xx without a body gets the error shape.

    Every view's errors go through ``voiceapp.exceptions``, so ``{"code","message"}`` is
    true of all of them, whether their ``@extend_schema`` named a body or not.
    """
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] in ("4", "5") and "content" not in response:
                    response["content"] = body
    return result


# --- POST /api/voice/turns/ --------------------------------------------------------------


class VoiceTurnFormSerializer(serializers.Serializer):
    """The multipart form of the HTTP fallback: ``audio`` or ``text``, plus options."""

    audio = serializers.FileField(
        required=False,
        allow_empty_file=True,  # an empty file is ``bad_audio``, decided by the decoder
        help_text="Recorded speech: WAV, WebM/Opus, Ogg or MP3, recognised from the content.",
    )
    text = serializers.CharField(
        required=False, allow_blank=True, help_text="A typed turn instead of audio."
    )
    session_id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Continue one of your sessions (its history); omitted: a new session.",
    )
    input_language = serializers.CharField(required=False, max_length=64)
    output_language = serializers.CharField(required=False, max_length=64)
    voice = serializers.CharField(required=False, allow_blank=True, max_length=64)
    speed = serializers.FloatField(required=False, min_value=0.5, max_value=2.0)
    preset = serializers.CharField(required=False, allow_blank=True, max_length=64)
    mode = serializers.ChoiceField(
        choices=VoiceSession.Mode.choices, required=False, help_text="Only `pipeline` is enabled."
    )
    input_format = serializers.ChoiceField(
        choices=INPUT_FORMATS,
        required=False,
        help_text="Accepted for symmetry with the WebSocket; uploads are sniffed instead.",
    )
    input_sample_rate = serializers.ChoiceField(choices=INPUT_SAMPLE_RATES, required=False)
    output_format = serializers.ChoiceField(
        choices=OUTPUT_FORMATS,
        required=False,
        help_text="Format of `audio_base64`; default `wav` (a complete file with its header).",
    )
    vad = serializers.ChoiceField(
        choices=VAD_MODES, required=False, help_text="Accepted; a whole upload needs no VAD."
    )


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class _IdField(serializers.JSONField):
    """A knowledge-base id as the retriever gives it (a number or a string)."""


class SourceSerializer(serializers.Serializer):
    """One passage the reply was grounded in (``reply.done``'s ``sources``)."""

    document_id = _IdField()
    title = serializers.CharField()
    chunk_id = _IdField()
    text = serializers.CharField()
    score = serializers.FloatField()


@extend_schema_field(SourceSerializer(many=True))
class SourcesField(serializers.JSONField):
    """The stored passages passed through unchanged, documented as ``Source`` items."""


class TurnTimingsSerializer(serializers.Serializer):
    """Milliseconds measured on the server; ``null`` for a stage that did not run."""

    stt_ms = serializers.FloatField(allow_null=True)
    retrieval_ms = serializers.FloatField(
        allow_null=True, help_text="Knowledge-base search for the transcript."
    )
    llm_first_token_ms = serializers.FloatField(allow_null=True)
    llm_first_clause_ms = serializers.FloatField(allow_null=True)
    llm_ms = serializers.FloatField(allow_null=True)
    tts_first_audio_ms = serializers.FloatField(allow_null=True)
    first_audio_ms = serializers.FloatField(
        allow_null=True, help_text="Request received → first reply audio at the web server."
    )
    total_ms = serializers.FloatField(help_text="Request received → the whole answer ready.")
    queue_ms = serializers.FloatField(required=False, help_text="Diagnostic, not stored.")
    setup_ms = serializers.FloatField(required=False, help_text="Diagnostic, not stored.")


class _WarningSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class VoiceTurnSerializer(serializers.Serializer):
    session_id = serializers.IntegerField(help_text="Send it back to keep the history.")
    turn_id = serializers.IntegerField()
    transcription = serializers.CharField(help_text="What the user said (or typed).")
    response_text = serializers.CharField()
    sources = SourcesField()
    audio_base64 = serializers.CharField(help_text="The spoken reply in `audio_format`.")
    audio_format = serializers.ChoiceField(choices=OUTPUT_FORMATS)
    sample_rate = serializers.IntegerField(allow_null=True, help_text="Extension.")
    status = serializers.ChoiceField(choices=["completed"], help_text="Extension.")
    timings = TurnTimingsSerializer()
    warnings = _WarningSerializer(
        many=True,
        help_text="Extension: non-fatal problems, e.g. `knowledge_unavailable` (the answer "
        "was given without the knowledge base).",
    )


# --- sessions ----------------------------------------------------------------------------


class SessionListSerializer(serializers.ModelSerializer):
    turn_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = VoiceSession
        fields = [
            "id",
            "status",
            "mode",
            "config",
            "started_at",
            "ended_at",
            "end_reason",
            "last_seen_at",
            "turn_count",
        ]


class TurnSerializer(serializers.ModelSerializer):
    sources = SourcesField(read_only=True)

    class Meta:
        model = Turn
        fields = [
            "id",
            "index",
            "status",
            "input_kind",
            "transport",
            "transcript",
            "reply",
            "reply_heard",
            "interrupted",
            "continued",
            "error_code",
            "error_message",
            "sources",
            "input_audio_seconds",
            "output_audio_seconds",
            *Turn.TIMING_FIELDS,
            "created_at",
            "finished_at",
        ]


class SessionDetailSerializer(SessionListSerializer):
    turns = TurnSerializer(many=True, read_only=True)

    class Meta(SessionListSerializer.Meta):
        fields = [*SessionListSerializer.Meta.fields, "turns"]


# --- SimpleJWT's views, documented without being wrapped ---------------------------------


def _token_view_with_errors(view_class: Any, summary: str) -> Any:
    """SimpleJWT's view with its 400/401 answers in the schema (its code is unchanged)."""
    serializer = view_class().get_serializer_class()

    class Documented(view_class):  # type: ignore[misc,valid-type]
        @extend_schema(summary=summary, responses={200: serializer, **error_responses(400, 401)})
        def post(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            return super().post(request, *args, **kwargs)

    return Documented


class _TokenObtainSchema(OpenApiViewExtension):
    target_class = "rest_framework_simplejwt.views.TokenObtainPairView"

    def view_replacement(self) -> Any:
        return _token_view_with_errors(self.target_class, "Log in: access and refresh tokens")


class _TokenRefreshSchema(OpenApiViewExtension):
    target_class = "rest_framework_simplejwt.views.TokenRefreshView"

    def view_replacement(self) -> Any:
        return _token_view_with_errors(self.target_class, "A new access token")


# --- GET/PUT /api/voice/preferences/ -----------------------------------------------------


class PreferencesSerializer(serializers.Serializer):
    """A user's voice page settings: WebSocket session options of the same names."""

    voice = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Empty: the server default."
    )
    speed = serializers.FloatField(required=False, min_value=0.5, max_value=2.0)
    input_language = serializers.CharField(required=False, max_length=16)
    output_language = serializers.CharField(required=False, max_length=16)
    mode = serializers.ChoiceField(choices=VoiceSession.Mode.choices, required=False)
    vad = serializers.ChoiceField(
        choices=VAD_MODES,
        required=False,
        help_text="`server`: hands-free; `client`: push-to-talk.",
    )


class _ModeOptionSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()
    available = serializers.BooleanField()
    reason = serializers.CharField(required=False)


class _ChoiceSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()


class _SpeedRangeSerializer(serializers.Serializer):
    min = serializers.FloatField()
    max = serializers.FloatField()
    step = serializers.FloatField()


class VoiceOptionsSerializer(serializers.Serializer):
    """What this server offers: the TTS backend's voices, the STT model's languages."""

    voices = serializers.ListField(child=serializers.CharField(), help_text="Default first.")
    languages = serializers.ListField(child=serializers.CharField())
    speed = _SpeedRangeSerializer()
    modes = _ModeOptionSerializer(many=True)
    vad = _ChoiceSerializer(many=True)


class PreferencesAnswerSerializer(PreferencesSerializer):
    options = VoiceOptionsSerializer(read_only=True)
