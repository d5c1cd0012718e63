"""The system prompt of a turn: the assistant's instructions plus the facts retrieved.

Small local models answer facts poorly from their own weights, so when the knowledge base
has passages for the question, the sentences of those passages that match the question
best go into the prompt with plain instructions: answer from them, briefly, and say so
when they do not hold the answer.

Sentences, not whole passages: measured with SmolLM2-135M on eight questions about the
demo handbook, the three best passages in full gave 4 right answers (the model picked a
neighbouring number: "day 18" for the hatch day), the best passage alone 6, and the two
best-matching sentences 7 — with a third of the prompt, so the first token also comes
sooner. Every prompt token is read before the first token of the answer: about 4 ms each
for SmolLM2-135M on this 2-core machine, so each sentence of facts costs about 120 ms
(``VOICEAPP_GROUNDING_SENTENCES`` trades accuracy against that).
"""

from __future__ import annotations

import re
from typing import Any

from knowledge.keywords import terms

#: Sentences of the retrieved passages handed to the LLM.
MAX_SENTENCES = 2
#: Characters of fact text in the prompt, over all sentences.
MAX_CONTEXT_CHARS = 600

GROUNDED = (
    "Answer from the facts below, taken from the knowledge base. Keep it short: one or "
    "two spoken sentences. If the facts do not answer the question, say plainly that the "
    "knowledge base does not say, and do not guess."
)
NOTHING_FOUND = (
    "The knowledge base has nothing on this question. If it asks for specific facts, say "
    "plainly that you do not have that information, and do not guess."
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def key_sentences(
    question: str, passages: list[dict[str, Any]], *, limit: int = MAX_SENTENCES
) -> list[str]:
    """The sentences of ``passages`` (best first) that share most words with ``question``.

    Each sentence scores the number of the question's content words it contains, plus one
    for sentences of the best passage (retrieval ranked it first for a reason); ties go
    to the better passage, then to the earlier sentence.
    """
    wanted = set(terms(question))
    scored: list[tuple[int, int, int, str]] = []
    for rank, passage in enumerate(passages):
        text = " ".join(str(passage.get("text", "")).split())
        for position, sentence in enumerate(_SENTENCE_END.split(text)):
            if not sentence:
                continue
            hits = len(wanted & set(terms(sentence))) + (1 if rank == 0 else 0)
            scored.append((-hits, rank, position, sentence))
    return [sentence for *_, sentence in sorted(scored)[:limit]]


def grounded_system_prompt(
    base: str,
    question: str,
    passages: list[dict[str, Any]] | None,
    *,
    sentences: int = MAX_SENTENCES,
    budget: int = MAX_CONTEXT_CHARS,
) -> str:
    """``base`` plus the facts for ``question`` from ``passages`` (``sources`` items).

    ``None`` means the knowledge base could not be asked: the base prompt alone. An
    empty list means it has nothing on the question, and the model is told so.
    """
    if passages is None:
        return base
    if not passages:
        return f"{base}\n\n{NOTHING_FOUND}"
    facts: list[str] = []
    left = budget
    for sentence in key_sentences(question, passages, limit=sentences):
        if left <= 0:
            break
        if len(sentence) > left:
            sentence = sentence[:left].rsplit(" ", 1)[0] + " …"
        left -= len(sentence)
        facts.append(f"- {sentence}")
    return f"{base}\n\n{GROUNDED}\n\nFacts:\n" + "\n".join(facts)
