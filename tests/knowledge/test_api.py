"""REST: /api/knowledge/documents/ and /api/knowledge/search/ (PROTOCOL.md), staff only."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from knowledge.models import Chunk, Document
from tests.knowledge.conftest import HANDBOOK
from tests.knowledge.fakes import HashEmbedder
from tests.knowledge.pdf import pdf_bytes
from voiceapp.errors import KnowledgeUnavailable

pytestmark = pytest.mark.django_db

DOCUMENTS = "/api/knowledge/documents/"
SEARCH = "/api/knowledge/search/"


def upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> Any:
    return SimpleUploadedFile(name, data, content_type=content_type)


def test_upload_a_file_indexed_before_201(staff_api: APIClient, staff: Any) -> None:
    response = staff_api.post(DOCUMENTS, {"file": upload("handbook.md", HANDBOOK.encode())})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "indexed" and body["created"] is True
    assert body["title"] == "Farm handbook" and body["source_name"] == "handbook.md"
    assert body["chunk_count"] == 3 and body["kind"] == "md" and body["owner"] == "keeper"
    assert body["index"] == {"chunks": 3, "embedded": 3, "reused": 0, "removed": 0}
    assert body["embedding_model"] == "fake-hash-256" and len(body["content_sha256"]) == 64
    # Searchable at once.
    found = staff_api.get(SEARCH, {"q": "turn the eggs"}).json()
    assert found["passages"][0]["document_id"] == body["id"]


def test_upload_again_updates_with_200(staff_api: APIClient) -> None:
    staff_api.post(DOCUMENTS, {"file": upload("handbook.md", HANDBOOK.encode())})
    changed = HANDBOOK.replace("three times", "five times").encode()
    response = staff_api.post(DOCUMENTS, {"file": upload("handbook.md", changed)})
    assert response.status_code == 200
    assert response.json()["created"] is False
    assert response.json()["index"] == {"chunks": 3, "embedded": 1, "reused": 2, "removed": 1}
    assert Document.objects.count() == 1


def test_upload_pdf_and_html_with_a_title(staff_api: APIClient) -> None:
    pdf = pdf_bytes([["Geese need grass and water.", "Keep them dry at night."]])
    response = staff_api.post(
        DOCUMENTS, {"file": upload("geese.pdf", pdf, "application/pdf"), "title": "Geese"}
    )
    assert response.status_code == 201 and response.json()["title"] == "Geese"
    html = b"<html><title>Ducks</title><h1>Ducks</h1><p>Ducks need water to swim.</p></html>"
    response = staff_api.post(DOCUMENTS, {"file": upload("ducks.html", html, "text/html")})
    assert response.status_code == 201 and response.json()["kind"] == "html"


def test_json_text(staff_api: APIClient) -> None:
    response = staff_api.post(
        DOCUMENTS, {"title": "Eggs", "text": "# Eggs\n\nStore eggs at 4 to 7 °C."}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "text" and response.json()["source_name"] == ""


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"file": ("notes.docx", b"PK\x03\x04")}, 415, "unsupported_file"),
        ({"file": ("empty.txt", b"")}, 400, "empty_document"),
        ({"file": ("bad.pdf", b"%PDF-1.4 garbage")}, 400, "bad_document"),
        ({"title": "only a title"}, 400, "bad_message"),
        ({"file": ("a.txt", b"text"), "text": "and text"}, 400, "bad_message"),
    ],
)
def test_refused_uploads(
    staff_api: APIClient, payload: dict[str, Any], status: int, code: str
) -> None:
    form = {
        key: upload(*value) if isinstance(value, tuple) else value for key, value in payload.items()
    }
    response = staff_api.post(DOCUMENTS, form)
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code and response.json()["message"]
    assert not Document.objects.exists()


def test_empty_json_text_is_refused(staff_api: APIClient) -> None:
    response = staff_api.post(DOCUMENTS, {"title": "x", "text": "  "}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "empty_document"


def test_too_large(staff_api: APIClient, settings: Any) -> None:
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "MAX_FILE_MB": 0.01}  # 10 KiB
    response = staff_api.post(DOCUMENTS, {"file": upload("big.txt", b"word " * 2_500)})
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    response = staff_api.post(DOCUMENTS, {"file": upload("big.txt", b"word " * 40_000)})
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_indexing_failure_is_503_and_stored_failed(staff_api: APIClient) -> None:
    HashEmbedder.fail_with = KnowledgeUnavailable("embedder down")
    response = staff_api.post(DOCUMENTS, {"file": upload("handbook.md", HANDBOOK.encode())})
    assert response.status_code == 503
    assert response.json() == {"code": "knowledge_unavailable", "message": "embedder down"}
    listed = staff_api.get(DOCUMENTS).json()["results"]
    assert listed[0]["status"] == "failed" and listed[0]["error"] == "embedder down"


def test_list_is_paginated(staff_api: APIClient) -> None:
    for i in range(22):
        staff_api.post(
            DOCUMENTS, {"title": f"Note {i}", "text": f"Fact number {i}."}, format="json"
        )
    page = staff_api.get(DOCUMENTS).json()
    assert page["count"] == 22 and len(page["results"]) == 20 and page["next"]
    assert page["results"][0]["title"] == "Note 21"  # most recent first
    assert page["results"][0]["chunk_count"] == 1
    assert len(staff_api.get(DOCUMENTS, {"page": 2}).json()["results"]) == 2
    bad = staff_api.get(DOCUMENTS, {"page": 9})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_message"


def test_delete(staff_api: APIClient) -> None:
    created = staff_api.post(DOCUMENTS, {"file": upload("handbook.md", HANDBOOK.encode())})
    document_id = created.json()["id"]
    assert staff_api.delete(f"{DOCUMENTS}{document_id}/").status_code == 204
    assert not Chunk.objects.exists()
    assert staff_api.get(SEARCH, {"q": "turn the eggs"}).json()["passages"] == []
    missing = staff_api.delete(f"{DOCUMENTS}{document_id}/")
    assert missing.status_code == 404 and missing.json()["code"] == "document_not_found"


def test_search(staff_api: APIClient) -> None:
    staff_api.post(DOCUMENTS, {"file": upload("handbook.md", HANDBOOK.encode())})
    body = staff_api.get(SEARCH, {"q": "How warm is the incubator?", "limit": 2}).json()
    assert body["query"] == "How warm is the incubator?" and len(body["passages"]) == 2
    assert body["store"] == "embedded" and body["model"] == "fake-hash-256" and body["ms"] >= 0
    best = body["passages"][0]
    assert set(best) == {"document_id", "title", "chunk_id", "text", "score", "heading_path"}
    assert best["heading_path"].endswith("Temperature")
    missing = staff_api.get(SEARCH)
    assert missing.status_code == 400 and missing.json()["code"] == "bad_message"


def test_search_when_the_store_fails_is_503(staff_api: APIClient) -> None:
    staff_api.post(DOCUMENTS, {"file": upload("handbook.md", HANDBOOK.encode())})
    HashEmbedder.fail_with = KnowledgeUnavailable("embedder down")
    response = staff_api.get(SEARCH, {"q": "eggs"})
    assert response.status_code == 503 and response.json()["code"] == "knowledge_unavailable"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", DOCUMENTS), ("post", DOCUMENTS), ("delete", f"{DOCUMENTS}1/"), ("get", SEARCH)],
)
def test_staff_only(user_api: APIClient, method: str, path: str) -> None:
    response = getattr(user_api, method)(path, {"q": "eggs"} if method == "get" else None)
    assert response.status_code == 403
    assert response.json()["code"] == "auth_failed" and response.json()["message"]
    anonymous = getattr(APIClient(), method)(path)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "auth_failed"
