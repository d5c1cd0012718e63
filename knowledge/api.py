"""REST views of the knowledge base, staff only: parse, authorise, delegate, reply.

PROTOCOL.md "HTTP endpoints": add a document (a file or pasted text; indexed before the
answer), list, delete (its passages leave the index too), and search (the passages a
voice turn would be given, with scores).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from knowledge.api_schema import (
    DocumentIndexedSerializer,
    DocumentSerializer,
    DocumentTextSerializer,
    DocumentUploadSerializer,
    SearchQuerySerializer,
    SearchResultSerializer,
    error_responses,
)
from knowledge.extraction import max_file_bytes
from knowledge.retrieval import knowledge_retrieve
from knowledge.selectors import document_get, documents_list
from knowledge.services import document_delete, document_ingest
from voiceapp.api import PagePagination, request_data_within
from voiceapp.errors import BadRequest, TooLarge


class DocumentListApi(ListAPIView):
    permission_classes = [IsAdminUser]
    parser_classes = [MultiPartParser, JSONParser]
    serializer_class = DocumentSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> Any:
        return documents_list()

    @extend_schema(
        summary="Knowledge documents, most recently changed first",
        tags=["knowledge"],
        responses={200: DocumentSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Add a document (a file or pasted text), indexed before the answer",
        description=(
            "`multipart/form-data` with `file` (.txt, .md, .html or .pdf) and an optional "
            '`title`, or JSON `{"title","text"}`. Markdown and HTML are split by their '
            "headings, then by sentences. A file with the name of an existing document "
            "(pasted text: its title) updates that document: only changed passages are "
            "embedded again, and the answer is `200` instead of `201`."
        ),
        tags=["knowledge"],
        request={
            "multipart/form-data": DocumentUploadSerializer,
            "application/json": DocumentTextSerializer,
        },
        examples=[
            OpenApiExample(
                "Pasted text",
                value={
                    "title": "Incubation",
                    "text": "# Incubation\n\nKeep eggs at 37.5 °C (99.5 °F).",
                },
                request_only=True,
                media_type="application/json",
            )
        ],
        responses={
            201: DocumentIndexedSerializer,
            200: DocumentIndexedSerializer,
            **error_responses(400, 401, 403, 413, 415, 503),
        },
    )
    def post(self, request: Request) -> Response:
        body = request_data_within(
            request,
            limit_bytes=max_file_bytes(),
            too_large="the request body is too large; upload the text as a file",
        )
        is_json = request.content_type.startswith("application/json")
        serializer = (DocumentTextSerializer if is_json else DocumentUploadSerializer)(data=body)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload, text = data.get("file"), data.get("text")
        if (upload is None) == (text is None):
            raise BadRequest("send either a `file` or `text`")
        if upload is not None:
            if upload.size > max_file_bytes():
                raise TooLarge(f"the file may be at most {max_file_bytes()} bytes")
            document, report = document_ingest(
                name=upload.name or "",
                data=upload.read(),
                title=data.get("title", ""),
                owner=request.user,
            )
        else:
            document, report = document_ingest(
                text=text, title=data.get("title", ""), owner=request.user
            )
        answer = {
            **DocumentSerializer(document_get(document_id=document.pk)).data,
            "created": report.created,
            "index": {
                "chunks": report.chunks,
                "embedded": report.embedded,
                "reused": report.reused,
                "removed": report.removed,
            },
        }
        return Response(answer, status=201 if report.created else 200)


class DocumentDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Delete a document; its passages leave the index (Weaviate too)",
        tags=["knowledge"],
        responses={204: None, **error_responses(401, 403, 404, 503)},
    )
    def delete(self, request: Request, document_id: int) -> Response:
        document_delete(document_id=document_id)
        return Response(status=204)


class KnowledgeSearchApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="The passages retrieval would hand the LLM for a question, with scores",
        tags=["knowledge"],
        parameters=[
            OpenApiParameter("q", str, required=True, description="The question."),
            OpenApiParameter(
                "limit", int, required=False, description="At most this many (default TOP_K)."
            ),
        ],
        responses={200: SearchResultSerializer, **error_responses(400, 401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        result = knowledge_retrieve(
            query.validated_data["q"],
            limit=query.validated_data.get("limit", settings.KNOWLEDGE["TOP_K"]),
        )
        return Response(
            {
                "query": query.validated_data["q"],
                "passages": [
                    {**passage.to_source(), "heading_path": passage.heading_path}
                    for passage in result.passages
                ],
                "ms": result.ms,
                "store": result.store,
                "model": result.model,
            }
        )
