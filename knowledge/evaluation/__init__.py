"""The retrieval evaluation set and its hit rates (used by a test and bench/retrieval.py).

Each question is labelled with the handbook section that answers it; a retrieved passage
hits when its heading path ends with that section, so the labels survive re-chunking.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.chunking import PATH_SEPARATOR
from knowledge.stores.base import Passage

SET_PATH = Path(__file__).resolve().parent / "retrieval_set.json"


@dataclass(frozen=True)
class Question:
    q: str
    section: str


@dataclass
class HitRates:
    total: int = 0
    top1: int = 0
    top3: int = 0
    misses: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.total if self.total else 0.0

    @property
    def top3_rate(self) -> float:
        return self.top3 / self.total if self.total else 0.0


def retrieval_set() -> list[Question]:
    data = json.loads(SET_PATH.read_text())
    return [Question(q=item["q"], section=item["section"]) for item in data["questions"]]


def is_hit(passage: Passage, section: str) -> bool:
    path = passage.heading_path
    return path == section or path.endswith(PATH_SEPARATOR + section)


def hit_rates(
    questions: Sequence[Question], search: Callable[[str], Sequence[Passage]]
) -> HitRates:
    """Top-1 and top-3 hits of ``search`` (a question → passages, best first)."""
    rates = HitRates()
    for question in questions:
        passages = list(search(question.q))[:3]
        rates.total += 1
        hits = [is_hit(passage, question.section) for passage in passages]
        rates.top1 += bool(hits[:1] and hits[0])
        rates.top3 += any(hits)
        if not hits[:1] or not hits[0]:
            got = [passage.heading_path.rsplit(PATH_SEPARATOR, 1)[-1] for passage in passages]
            rates.misses.append((question.q, question.section, got))
    return rates
