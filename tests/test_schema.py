"""``/api/schema/``: a valid OpenAPI 3 document that names every endpoint and error, and
the API itself never answers 5xx to what the document allows (schemathesis).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error

from tests.conftest import policy_for, token_for
from tests.stack import ROOT
from voiceapp.errors import ErrorCode

pytestmark = pytest.mark.django_db

#: path → method → the error statuses the operation documents (at least).
EXPECTED = {
    "/api/auth/token/": {"post": {400, 401}},
    "/api/auth/token/refresh/": {"post": {400, 401}},
    "/api/voice/turns/": {"post": {400, 401, 404, 413, 429, 502, 503, 504}},
    "/api/sessions/": {"get": {400, 401}},
    "/api/sessions/{session_id}/": {"get": {401, 404}},
    "/api/schema/": {"get": set()},
    "/api/voice/preferences/": {"get": {401}, "put": {400, 401}},
}
ERROR_REF = "#/components/schemas/Error"


@pytest.fixture
def document() -> dict[str, Any]:
    response = APIClient().get(
        "/api/schema/",
        HTTP_ACCEPT="application/vnd.oai.openapi+json",
        HTTP_AUTHORIZATION="Bearer x",
    )
    assert response.status_code == 200  # public: even a stale token does not 401 it
    return response.json()


def test_schema_is_valid_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    validate(document)


def test_schema_lists_every_endpoint_and_error(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path, methods in EXPECTED.items():
        for method, errors in methods.items():
            operation = paths[path][method]
            assert errors <= {int(code) for code in operation["responses"]}, (path, method)
    if "/api/kpis/" in paths:  # added beside this API; staff only
        assert {"401", "403"} <= set(paths["/api/kpis/"]["get"]["responses"])
    # Every error any operation documents has the one error shape.
    for path, operations in paths.items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_REF}, (path, method, status)
    components = document["components"]["schemas"]
    assert set(components["Error"]["required"]) == {"code", "message"}
    assert set(components["ErrorCodeEnum"]["enum"]) == {str(code) for code in ErrorCode}
    turn = paths["/api/voice/turns/"]["post"]
    assert list(turn["requestBody"]["content"]) == ["multipart/form-data"]
    form = turn["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    fields = components[form.rsplit("/", 1)[1]]["properties"]
    assert fields["audio"] == {**fields["audio"], "type": "string", "format": "binary"}
    assert {"text", "session_id", "voice", "speed", "output_format"} <= set(fields)
    answer = turn["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert {
        "session_id",
        "turn_id",
        "transcription",
        "response_text",
        "sources",
        "audio_base64",
        "audio_format",
        "timings",
    } <= set(components[answer.rsplit("/", 1)[1]]["required"])


def test_spectacular_validates_without_warnings(tmp_path: Any) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            f"--file={tmp_path / 'schema.yaml'}",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_swagger_ui_is_served_without_a_cdn() -> None:
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and "/api/schema/" in page
    assert "cdn." not in page and "unpkg" not in page


# --- property-based: no 5xx for anything the schema allows ---------------------------------

MAX_EXAMPLES = 30


#: The document as ``/api/schema/`` serves it, fetched through the WSGI app at collection.
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    get_wsgi_application(),
    config=schemathesis.Config.from_dict(
        {"generation": {"max-examples": MAX_EXAMPLES, "mode": "all"}}
    ),
)


@pytest.fixture
def fuzz_token(django_user_model: Any, fake_stages: Any) -> str:
    """A user whose quotas never stop the fuzzer (each turn without session_id is a session)."""
    user = django_user_model.objects.create_user("fuzz", password="fuzz-password-1")
    policy_for(user, sessions_per_hour=10_000, turns_per_day=10_000, max_concurrent_sessions=10_000)
    return token_for(user)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db(transaction=True)
def test_no_server_errors(case: Any, live_server: Any, fuzz_token: str) -> None:
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {fuzz_token}"},
        checks=[not_a_server_error],
        timeout=30,
    )
