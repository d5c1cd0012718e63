"""Knowledge-base fixtures: the fake embedder, a Weaviate double, staff API clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from knowledge.registry import reset_knowledge_backends
from tests.conftest import token_for
from tests.doubles.weaviate_server import WeaviateDouble, weaviate_double
from tests.knowledge.fakes import HashEmbedder, reset_fake_embedder

HANDBOOK = """# Farm handbook

## Incubation

### Temperature

Keep the incubator at 37.5 degrees Celsius. A steady temperature matters most.

### Turning

Turn the eggs three times a day. Stop turning on day 18.

## Feeding

### Layer feed

Layer feed has 16 percent protein and extra calcium for strong shells.
"""


@pytest.fixture(autouse=True)
def knowledge_settings(settings: Any) -> Iterator[Any]:
    """Every knowledge test: the fake embedder and the embedded store, fresh instances."""
    settings.KNOWLEDGE_BACKENDS = {
        "store": dict(settings.KNOWLEDGE_BACKENDS["store"]),
        "embedder": {
            **settings.KNOWLEDGE_BACKENDS["embedder"],
            "fake": "tests.knowledge.fakes.HashEmbedder",
        },
    }
    settings.KNOWLEDGE = {
        **settings.KNOWLEDGE,
        "EMBEDDER": "fake",
        "STORE": "embedded",
        "MIN_SCORE": 0.0,
        "WEAVIATE_RETRY_AFTER_S": 0.0,
    }
    reset_fake_embedder()
    reset_knowledge_backends()
    yield settings
    reset_knowledge_backends()
    reset_fake_embedder()


@pytest.fixture
def fake_embedder() -> type[HashEmbedder]:
    return HashEmbedder


@pytest.fixture
def weaviate(knowledge_settings: Any) -> Iterator[WeaviateDouble]:
    """A Weaviate double, and the settings pointing the store at it."""
    with weaviate_double() as double:
        knowledge_settings.KNOWLEDGE = {
            **knowledge_settings.KNOWLEDGE,
            "STORE": "weaviate",
            "WEAVIATE_URL": double.url,
            "WEAVIATE_GRPC_HOST": "127.0.0.1",
            "WEAVIATE_GRPC_PORT": double.grpc_port,
            "WEAVIATE_TENANT": "tenant-a",
            "WEAVIATE_TIMEOUT_S": 5.0,
        }
        reset_knowledge_backends()
        yield double
        reset_knowledge_backends()


@pytest.fixture
def staff(db: Any) -> Any:
    return get_user_model().objects.create_user(
        "keeper", password="keeper-password-1", is_staff=True
    )


@pytest.fixture
def staff_api(staff: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(staff)}")
    return client


@pytest.fixture
def user_api(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client
