"""Admin: upload a file or paste text, list with status and passages, re-index, delete."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from knowledge.models import Chunk, Document
from knowledge.services import document_ingest
from tests.doubles.weaviate_server import Failure, WeaviateDouble
from tests.knowledge.conftest import HANDBOOK
from tests.knowledge.fakes import HashEmbedder
from voiceapp.errors import KnowledgeUnavailable

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/knowledge/document/"
ADD = "/admin/knowledge/document/add/"


@pytest.fixture
def admin_client_(db: Any) -> Client:
    admin = get_user_model().objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(admin)
    return client


def test_upload_a_file(admin_client_: Client) -> None:
    page = admin_client_.get(ADD)
    assert (
        page.status_code == 200
        and b'name="file"' in page.content
        and b'name="text"' in page.content
    )
    response = admin_client_.post(
        ADD,
        {"title": "", "file": SimpleUploadedFile("handbook.md", HANDBOOK.encode())},
        follow=True,
    )
    assert response.status_code == 200
    document = Document.objects.get()
    assert document.status == Document.Status.INDEXED and document.chunks.count() == 3
    assert document.owner is not None and document.owner.username == "root"
    assert "Indexed: 3 passages" in response.content.decode()


def test_paste_text(admin_client_: Client) -> None:
    response = admin_client_.post(
        ADD, {"title": "Eggs", "text": "# Eggs\n\nStore eggs cold.", "file": ""}, follow=True
    )
    assert response.status_code == 200
    assert Document.objects.get().title == "Eggs"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"title": "x"}, "Upload a file or paste text"),
        ({"file": SimpleUploadedFile("a.docx", b"PK")}, "only .txt, .md, .html and .pdf"),
        ({"file": SimpleUploadedFile("a.txt", b"")}, "empty"),
    ],
)
def test_bad_uploads_show_form_errors(admin_client_: Client, form: dict, message: str) -> None:
    response = admin_client_.post(ADD, form)
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert not Document.objects.exists()


def test_indexing_failure_is_reported(admin_client_: Client) -> None:
    HashEmbedder.fail_with = KnowledgeUnavailable("embedder down")
    response = admin_client_.post(
        ADD, {"file": SimpleUploadedFile("handbook.md", HANDBOOK.encode())}, follow=True
    )
    assert "Stored, but indexing failed: embedder down" in response.content.decode()
    assert Document.objects.get().status == Document.Status.FAILED


def test_changelist_shows_status_and_passages(admin_client_: Client) -> None:
    document_ingest(name="handbook.md", data=HANDBOOK.encode())
    page = admin_client_.get(CHANGELIST).content.decode()
    assert "Farm handbook" in page and "indexed" in page
    assert '<td class="field-chunk_count">3</td>' in page
    detail = admin_client_.get(f"{CHANGELIST}{Document.objects.get().pk}/change/")
    assert (
        detail.status_code == 200 and "Turn the eggs three times a day." in detail.content.decode()
    )


def test_reindex_action(admin_client_: Client) -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    HashEmbedder.model = "fake-hash-256-v2"
    response = admin_client_.post(
        CHANGELIST,
        {"action": "reindex_documents", "_selected_action": [document.pk]},
        follow=True,
    )
    assert "Re-indexed “Farm handbook”: 3 passages (3 embedded" in response.content.decode()
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {"fake-hash-256-v2"}


def test_delete_one_and_many(admin_client_: Client) -> None:
    first, _ = document_ingest(name="a.md", data=b"# A\n\nOne.")
    second, _ = document_ingest(name="b.md", data=b"# B\n\nTwo.")
    third, _ = document_ingest(name="c.md", data=b"# C\n\nThree.")
    admin_client_.post(f"{CHANGELIST}{first.pk}/delete/", {"post": "yes"})
    admin_client_.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [second.pk, third.pk], "post": "yes"},
    )
    assert not Document.objects.exists() and not Chunk.objects.exists()


def test_delete_when_weaviate_refuses_says_so(
    admin_client_: Client, weaviate: WeaviateDouble
) -> None:
    document, _ = document_ingest(name="handbook.md", data=HANDBOOK.encode())
    weaviate.grpc_failures["BatchDelete"] = Failure()
    response = admin_client_.post(
        f"{CHANGELIST}{document.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert "was not deleted" in response.content.decode()
    assert Document.objects.filter(pk=document.pk).exists()
