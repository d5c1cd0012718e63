"""REST views: parse, authorise, delegate, reply (PROTOCOL.md "HTTP endpoints").

The turn view stays synchronous on purpose: DRF views are sync, and under daphne
``async_to_sync`` runs ``http_turn_run`` on the server's own event loop (where the
channel layer lives), while this request's thread only waits for the answer.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.api_schema import (
    PreferencesAnswerSerializer,
    PreferencesSerializer,
    SessionDetailSerializer,
    SessionListSerializer,
    VoiceTurnFormSerializer,
    VoiceTurnSerializer,
    error_responses,
)
from conversations.selectors import preferences_of_user, session_of_user, sessions_of_user
from conversations.services import preferences_update
from realtime.http_turn import DEFAULT_OUTPUT_FORMAT, http_turn_run
from realtime.options import voice_options
from realtime.protocol import CONFIG_QUERY_KEYS, ProtocolError, SessionConfig
from voiceapp.api import PagePagination, request_data_within
from voiceapp.errors import BadRequest, ErrorCode, TooLarge


class VoiceTurnApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="One voice turn over HTTP (the WebSocket's fallback)",
        description=(
            "Send `audio` (a whole recording) or `text`, with the WebSocket's session "
            "options; get the transcription, the reply text and the spoken reply in one "
            "answer. Omit `session_id` and every request opens a new session: send it back "
            "to keep the conversation history. The turn is stored with `transport: rest`."
        ),
        tags=["voice"],
        request={"multipart/form-data": VoiceTurnFormSerializer},
        examples=[
            OpenApiExample(
                "A typed turn",
                value={"text": "What temperature do eggs need?", "output_format": "mp3"},
                request_only=True,
                media_type="multipart/form-data",
            )
        ],
        responses={
            201: VoiceTurnSerializer,
            **error_responses(400, 401, 404, 413, 429, 502, 503, 504),
        },
    )
    def post(self, request: Request) -> Response:
        received_at = time.perf_counter()
        form = request_data_within(
            request,
            limit_bytes=settings.VOICE["MAX_UPLOAD_BYTES"],
            too_large="the form fields are too large",
        )
        unknown = sorted(set(form) - set(VoiceTurnFormSerializer().fields))
        if unknown:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown field(s): {', '.join(unknown)}")
        serializer = VoiceTurnFormSerializer(data=form)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload, limit = data.get("audio"), settings.VOICE["MAX_UPLOAD_BYTES"]
        if upload is not None and upload.size > limit:
            raise TooLarge(f"the audio file may be at most {limit} bytes")
        options = {key: data[key] for key in CONFIG_QUERY_KEYS if key in data}
        config = SessionConfig().updated({"output_format": DEFAULT_OUTPUT_FORMAT, **options})
        result = async_to_sync(http_turn_run)(
            user=request.user,
            config=config,
            audio=upload.read() if upload is not None else None,
            text=data.get("text") or None,
            session_id=data.get("session_id"),
            client_info={
                "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
                "ip": request.META.get("REMOTE_ADDR", ""),
                "transport": "rest",
            },
            received_at=received_at,
        )
        return Response(result.to_dict(), status=201)


@extend_schema(
    summary="Your sessions, newest first",
    tags=["sessions"],
    responses={200: SessionListSerializer(many=True), **error_responses(400, 401)},
)
class SessionListApi(ListAPIView):
    serializer_class = SessionListSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> Any:
        return sessions_of_user(user=self.request.user)


class SessionDetailApi(APIView):
    @extend_schema(
        summary="One of your sessions with its turns, transcripts and timings",
        tags=["sessions"],
        responses={200: SessionDetailSerializer, **error_responses(401, 404)},
    )
    def get(self, request: Request, session_id: int) -> Response:
        session = session_of_user(user=request.user, session_id=session_id)
        return Response(SessionDetailSerializer(session).data)


class PreferencesApi(APIView):
    """The signed-in user's voice page settings, with the choices this server offers."""

    @staticmethod
    def _answer(user: Any) -> Response:
        return Response({**preferences_of_user(user=user), "options": voice_options()})

    @extend_schema(
        summary="Your voice settings and the choices this server offers",
        tags=["voice"],
        responses={200: PreferencesAnswerSerializer, **error_responses(401)},
    )
    def get(self, request: Request) -> Response:
        return self._answer(request.user)

    @extend_schema(
        summary="Change some of your voice settings",
        description=(
            "Send any subset of the settings; the others keep their value. Each is the "
            "WebSocket session option of the same name and is checked the same way, and "
            "against the voices and languages listed in `options`."
        ),
        tags=["voice"],
        request=PreferencesSerializer,
        responses={200: PreferencesAnswerSerializer, **error_responses(400, 401)},
    )
    def put(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise BadRequest("send a JSON object of settings")
        unknown = sorted(set(request.data) - set(PreferencesSerializer().fields))
        if unknown:
            raise BadRequest(f"unknown setting(s): {', '.join(unknown)}")
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preferences_update(user=request.user, changes=dict(serializer.validated_data))
        return self._answer(request.user)
