"""Knowledge-base passages in the turn: into the LLM's prompt, out as ``reply.done.sources``,
stored with the turn; a knowledge base that fails or is slow never fails the turn."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from conversations.models import Turn
from knowledge.registry import reset_knowledge_backends
from knowledge.services import document_ingest
from knowledge.stores.embedded import EmbeddedStore
from tests.knowledge.fakes import reset_fake_embedder
from voiceapp.errors import KnowledgeUnavailable

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

HANDBOOK = """# Incubation

Chicken eggs incubate at 37.5 degrees Celsius with about 55 percent humidity.

# Feeding

Layer feed has 16 percent protein and extra calcium for strong shells.
"""


class BrokenStore(EmbeddedStore):
    def search(self, **kwargs: Any) -> Any:
        raise KnowledgeUnavailable("the vector store refused the connection")


class SlowStore(EmbeddedStore):
    def search(self, **kwargs: Any) -> Any:
        time.sleep(3.0)  # well past TIMEOUT_S (1 s) plus the slack
        return super().search(**kwargs)


@pytest.fixture
def knowledge(settings: Any) -> Iterator[Any]:
    """The fake embedder over the embedded store, and the demo facts above indexed."""
    settings.KNOWLEDGE_BACKENDS = {
        "store": {
            **settings.KNOWLEDGE_BACKENDS["store"],
            "broken": "tests.realtime.test_consumer_knowledge.BrokenStore",
            "slow": "tests.realtime.test_consumer_knowledge.SlowStore",
        },
        "embedder": {
            **settings.KNOWLEDGE_BACKENDS["embedder"],
            "fake": "tests.knowledge.fakes.HashEmbedder",
        },
    }
    settings.KNOWLEDGE = {
        **settings.KNOWLEDGE,
        "EMBEDDER": "fake",
        "STORE": "embedded",
        "MIN_SCORE": 0.1,
    }
    reset_fake_embedder()
    reset_knowledge_backends()
    document_ingest(text=HANDBOOK, title="Poultry handbook")
    yield settings
    reset_knowledge_backends()
    reset_fake_embedder()


def use_store(settings: Any, name: str, **options: Any) -> None:
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "STORE": name, **options}
    reset_knowledge_backends()


async def test_passages_ground_the_reply_and_are_listed_and_stored(
    connect: Any, user: Any, fake_stages: Any, knowledge: Any
) -> None:
    client = await connect(user)
    await client.send(type="text", text="At what temperature do chicken eggs incubate?")
    done = await client.until("turn.done")
    assert done["status"] == "completed"
    reply_done = next(e for e in client.events if e["type"] == "reply.done")
    sources = reply_done["sources"]
    assert sources and "37.5 degrees" in sources[0]["text"]
    assert set(sources[0]) == {"document_id", "title", "chunk_id", "text", "score"}
    assert sources[0]["title"] == "Poultry handbook"
    assert [s["score"] for s in sources] == sorted((s["score"] for s in sources), reverse=True)
    system = fake_stages.seen_messages[-1][0]
    assert system["role"] == "system" and "37.5 degrees Celsius" in system["content"]
    assert "Answer from the facts below" in system["content"]
    assert done["timings"]["retrieval_ms"] is not None
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.sources == sources
    assert turn.retrieval_ms is not None and turn.retrieval_ms >= 0
    assert "error" not in client.types()


async def test_an_unmatched_question_is_told_to_say_it_does_not_know(
    connect: Any, user: Any, fake_stages: Any, knowledge: Any
) -> None:
    client = await connect(user)
    await client.send(type="text", text="zzz qqq xxx")
    await client.until("turn.done")
    reply_done = next(e for e in client.events if e["type"] == "reply.done")
    assert reply_done["sources"] == []
    assert "nothing on this question" in fake_stages.seen_messages[-1][0]["content"]


@pytest.mark.parametrize(
    ("store", "words"),
    [("broken", "refused the connection"), ("slow", "did not answer within 1 s")],
)
async def test_a_failing_or_slow_knowledge_base_never_fails_the_turn(
    connect: Any, user: Any, fake_stages: Any, knowledge: Any, store: str, words: str
) -> None:
    use_store(knowledge, store, TIMEOUT_S=1.0)
    client = await connect(user)
    await client.send(type="text", text="At what temperature do chicken eggs incubate?")
    warning = await client.until("error")
    assert warning["code"] == "knowledge_unavailable" and warning["fatal"] is False
    assert words in warning["message"]
    done = await client.until("turn.done")
    assert done["status"] == "completed"
    reply_done = next(e for e in client.events if e["type"] == "reply.done")
    assert reply_done["sources"] == []
    system = fake_stages.seen_messages[-1][0]["content"]
    assert "Facts:" not in system and "nothing on this question" not in system
    turn = await database_sync_to_async(Turn.objects.get)(pk=done["turn_id"])
    assert turn.status == Turn.Status.COMPLETED and turn.sources == []
    assert turn.retrieval_ms is not None
