"""Documents of the knowledge base and the chunks retrieval hands to the LLM.

The database is the source of truth: every chunk keeps its text and its vector here, so
the embedded store searches these rows directly and a Weaviate collection can always be
rebuilt from them (re-index).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Document(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        INDEXED = "indexed", "indexed"
        FAILED = "failed", "failed"

    title = models.CharField(max_length=300)
    #: The uploaded file's name (``ingest_knowledge``: the path given); empty for pasted
    #: text. An upload with the same source name updates this document in place.
    source_name = models.CharField(max_length=500, blank=True, db_index=True)
    kind = models.CharField(max_length=16, help_text="txt, md, html, pdf or text (pasted)")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="knowledge_documents",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    error = models.TextField(blank=True, help_text="Why the last indexing failed.")
    #: The extracted text as indexed: re-indexing needs no original file.
    text = models.TextField(blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    #: The embedder the chunks' vectors come from, ``""`` before the first indexing.
    embedding_model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-updated_at", "-id")

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    """One passage: a heading path and a few sentences, with its vector.

    ``key`` is derived from the passage's content (document, heading path and normalised
    text), so re-ingesting a changed document keeps the rows, vectors and ids of the
    passages that did not change.
    """

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    key = models.CharField(max_length=64)
    position = models.PositiveIntegerField()
    heading_path = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    #: float32 little-endian, ``dims`` values, L2-normalised.
    embedding = models.BinaryField()
    embedding_model = models.CharField(max_length=200, db_index=True)
    dims = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("document_id", "position")
        constraints = [
            models.UniqueConstraint(fields=("document", "key"), name="knowledge_chunk_key")
        ]

    def __str__(self) -> str:
        return f"{self.document_id}:{self.key[:12]}"
