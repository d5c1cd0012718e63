"""Reads that shape knowledge documents for the API and the admin."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from knowledge.models import Document
from voiceapp.errors import DocumentNotFound


def documents_list() -> QuerySet[Document]:
    """Every document, most recently changed first, each with ``chunk_count``."""
    return (
        Document.objects.select_related("owner")
        .defer("text")
        .annotate(chunk_count=Count("chunks"))
        .order_by("-updated_at", "-id")
    )


def document_get(*, document_id: int) -> Document:
    document = documents_list().filter(pk=document_id).first()
    if document is None:
        raise DocumentNotFound(f"document {document_id} does not exist")
    return document
