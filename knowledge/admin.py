"""Admin for the knowledge base: upload a file or paste text, list, re-index, delete.

Adding and deleting go through the services, so an upload is indexed before the page
answers and a deleted document's passages leave the vector store (Weaviate too). When
the store cannot be reached, the admin says so instead of pretending it worked.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from knowledge.extraction import pasted_text, text_extract
from knowledge.models import Chunk, Document
from knowledge.services import document_delete, document_index, document_store, documents_reindex
from voiceapp.errors import AppError

STATUS_COLOURS = {
    Document.Status.PENDING: "#4b5563",
    Document.Status.INDEXED: "#15803d",
    Document.Status.FAILED: "#b91c1c",
}


class DocumentUploadForm(forms.ModelForm):
    """The add page: a file, or pasted text; checked here so errors show on the form."""

    file = forms.FileField(required=False, help_text=".txt, .md, .html or .pdf")
    text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90}),
        help_text="Or paste text; markdown # headings split it into sections.",
        strip=False,
    )

    class Meta:
        model = Document
        fields = ["title"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "title" in self.fields:  # the add page; the view page shows read-only fields
            self.fields["title"].required = False
            self.fields["title"].help_text = "Optional: taken from the document when empty."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload, text = data.get("file"), data.get("text") or ""
        if (upload is None) == (not text.strip()):
            raise forms.ValidationError("Upload a file or paste text (one of the two).")
        try:
            if upload is not None:
                data["file_bytes"] = upload.read()
                text_extract(name=upload.name, data=data["file_bytes"])
            else:
                pasted_text(text=text)
        except AppError as err:
            raise forms.ValidationError(err.message, code=str(err.code)) from err
        return data


class ChunkInline(admin.TabularInline):
    model = Chunk
    extra = 0
    can_delete = False
    show_change_link = False
    fields = ("position", "heading_path", "passage", "embedding_model", "dims", "key")
    readonly_fields = fields
    ordering = ("position",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="text")
    def passage(self, obj: Chunk) -> str:
        return Truncator(obj.text).chars(400)


@admin.action(description="Re-index the selected documents")
def reindex_documents(
    modeladmin: DocumentAdmin, request: HttpRequest, queryset: QuerySet[Document]
) -> None:
    reports, failures = documents_reindex(document_ids=list(queryset.values_list("pk", flat=True)))
    for report in reports:
        modeladmin.message_user(request, f"Re-indexed “{report.title}”: {report.summary()}.")
    for document_id, err in failures:
        modeladmin.message_user(
            request, f"Document {document_id} failed: {err.message}", level=messages.ERROR
        )


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    form = DocumentUploadForm
    list_display = (
        "title",
        "source_name",
        "kind",
        "status_badge",
        "chunk_count",
        "embedding_model",
        "owner",
        "updated_at",
    )
    list_filter = ("status", "kind", "embedding_model")
    search_fields = ("title", "source_name")
    list_select_related = ("owner",)
    actions = (reindex_documents,)
    inlines = (ChunkInline,)
    readonly_fields = (
        "title",
        "source_name",
        "kind",
        "status_badge",
        "error",
        "chunk_count",
        "embedding_model",
        "content_sha256",
        "owner",
        "created_at",
        "updated_at",
        "indexed_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).annotate(n_chunks=Count("chunks"))

    def get_fields(self, request: HttpRequest, obj: Document | None = None) -> Any:
        if obj is None:
            return ("title", "file", "text")
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Document | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Document | None) -> Any:
        return () if obj is None else self.inlines

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable, not editable: a changed document is uploaded again (same file name).
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Document) -> SafeString:
        return format_html(
            '<span style="display:inline-block;padding:0 .6em;border-radius:.8em;color:#fff;'
            'background:{};font-weight:600">{}</span>',
            STATUS_COLOURS.get(obj.status, "#4b5563"),
            obj.get_status_display(),
        )

    @admin.display(description="passages", ordering="n_chunks")
    def chunk_count(self, obj: Document) -> int:
        counted = getattr(obj, "n_chunks", None)
        return obj.chunks.count() if counted is None else counted

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        data = form.cleaned_data
        upload = data.get("file")
        document, _, retitled = document_store(
            name=upload.name if upload is not None else "",
            data=data.get("file_bytes") if upload is not None else None,
            text=None if upload is not None else data.get("text"),
            title=data.get("title") or "",
            owner=request.user,
        )
        obj.pk = document.pk
        obj.title = document.title
        try:
            report = document_index(document_id=document.pk, push_all=retitled)
        except AppError as err:
            self.message_user(
                request, f"Stored, but indexing failed: {err.message}", level=messages.ERROR
            )
        else:
            self.message_user(request, f"Indexed: {report.summary()}.")

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        try:
            document_delete(document_id=obj.pk)
        except AppError as err:
            request._knowledge_delete_error = err.message  # type: ignore[attr-defined]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document_id in list(queryset.values_list("pk", flat=True)):
            try:
                document_delete(document_id=document_id)
            except AppError as err:
                self.message_user(
                    request,
                    f"Document {document_id} was not deleted: {err.message}",
                    level=messages.ERROR,
                )

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        error = getattr(request, "_knowledge_delete_error", None)
        if error is None:
            return super().response_delete(request, obj_display, obj_id)
        self.message_user(
            request, f"“{obj_display}” was not deleted: {error}", level=messages.ERROR
        )
        return HttpResponseRedirect(reverse("admin:knowledge_document_change", args=[obj_id]))
