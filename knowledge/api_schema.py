"""Wire shapes of the knowledge API, and its error responses for ``/api/schema/``.

Errors use the one ``Error`` body of ``conversations.api_schema`` (``{"code","message"}``);
the descriptions here name the knowledge base's own codes.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from conversations.api_schema import ErrorSerializer
from knowledge.models import Document

ERROR_DESCRIPTIONS = {
    400: "`bad_message` (no `file` and no `text`, or both, or a bad field), "
    "`empty_document` (no text in it) or `bad_document` (a file that cannot be read)",
    401: "`auth_failed`: no, invalid or expired access token",
    403: "`auth_failed`: not allowed (staff only)",
    404: "`document_not_found`: no such document",
    413: "`too_large`: a file or text over `VOICEAPP_KNOWLEDGE_MAX_FILE_MB`",
    415: "`unsupported_file`: only .txt, .md, .html and .pdf files are accepted",
    503: "`knowledge_unavailable`: the embedder or the vector store (Weaviate) failed or "
    "ran out of time; an upload is stored with status `failed`",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in codes
    }


class DocumentSerializer(serializers.ModelSerializer):
    chunk_count = serializers.IntegerField(read_only=True)
    owner = serializers.CharField(source="owner.get_username", read_only=True, default=None)

    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "source_name",
            "kind",
            "status",
            "error",
            "chunk_count",
            "embedding_model",
            "content_sha256",
            "owner",
            "created_at",
            "updated_at",
            "indexed_at",
        ]


class IndexReportSerializer(serializers.Serializer):
    chunks = serializers.IntegerField(help_text="Passages in the document now.")
    embedded = serializers.IntegerField(help_text="Passages embedded by this upload.")
    reused = serializers.IntegerField(help_text="Unchanged passages kept with their vectors.")
    removed = serializers.IntegerField(help_text="Passages that left the document.")


class DocumentIndexedSerializer(DocumentSerializer):
    created = serializers.BooleanField(
        help_text="False: a document with this file name (pasted text: this title) existed "
        "and was updated; only its changed passages were embedded."
    )
    index = IndexReportSerializer()

    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "created", "index"]


class DocumentUploadSerializer(serializers.Serializer):
    """``multipart/form-data``: a file, or text; ``title`` is optional with a file."""

    file = serializers.FileField(
        required=False,
        allow_empty_file=True,  # an empty file is ``empty_document``, not a form error
        help_text=".txt, .md, .html or .pdf",
    )
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)


class DocumentTextSerializer(serializers.Serializer):
    """``application/json``: pasted text (markdown headings are used for chunking)."""

    title = serializers.CharField(max_length=300, allow_blank=True, required=False)
    text = serializers.CharField(allow_blank=True, trim_whitespace=False)


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=1000, help_text="The question.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=50)


class PassageSerializer(serializers.Serializer):
    document_id = serializers.IntegerField()
    title = serializers.CharField()
    chunk_id = serializers.CharField()
    text = serializers.CharField()
    score = serializers.FloatField(help_text="Cosine similarity of question and passage.")
    heading_path = serializers.CharField(help_text="Extension: the headings above it.")


class SearchResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    passages = PassageSerializer(many=True, help_text="Best first; `sources` items.")
    ms = serializers.FloatField(help_text="Embedding the question + the search.")
    store = serializers.CharField()
    model = serializers.CharField(help_text="The embedding model.")
