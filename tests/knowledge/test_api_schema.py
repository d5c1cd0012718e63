"""/api/schema/ documents the knowledge endpoints, every error with the one error body."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

EXPECTED = {
    "/api/knowledge/documents/": {
        "get": {"200", "400", "401", "403"},
        "post": {"200", "201", "400", "401", "403", "413", "415", "503"},
    },
    "/api/knowledge/documents/{document_id}/": {"delete": {"204", "401", "403", "404", "503"}},
    "/api/knowledge/search/": {"get": {"200", "400", "401", "403", "503"}},
}


@pytest.fixture
def document() -> dict[str, Any]:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    return response.json()


def test_knowledge_endpoints_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path, methods in EXPECTED.items():
        for method, statuses in methods.items():
            responses = paths[path][method]["responses"]
            assert statuses <= set(responses), (path, method, set(responses))
            for status, response in responses.items():
                if status[0] in "45":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
    post = paths["/api/knowledge/documents/"]["post"]["requestBody"]["content"]
    assert set(post) == {"multipart/form-data", "application/json"}
    components = document["components"]["schemas"]
    form = components[post["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert form["properties"]["file"]["format"] == "binary"
    codes = set(components["ErrorCodeEnum"]["enum"])
    assert {"unsupported_file", "empty_document", "knowledge_unavailable"} <= codes
    assert set(components["DocumentStatusEnum"]["enum"]) == {"pending", "indexed", "failed"}
