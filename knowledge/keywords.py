"""BM25 keyword scores for the embedded store's hybrid ranking.

The small e5 model sometimes ranks a passage about a neighbouring topic first ("bloody
droppings" → pasty butt instead of coccidiosis). Adding a small, saturated keyword
bonus to the cosine similarity fixes most of those: on the retrieval set (bench/
retrieval.py) top-1 went from 87 % to 97 % and top-3 from 97 % to 100 %, with the same
gain on either half of the questions. The bonus is at most ``weight``
(``KNOWLEDGE["KEYWORD_WEIGHT"]``), so scores stay cosine-like and comparable with
``MIN_SCORE``.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)
#: Question words and glue that say nothing about a passage's topic.
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in is it its me my of on or "
    "should that the their them they this to was what when where which who why will with "
    "you your much many long".split()
)
#: BM25 constants (the usual ones) and the bonus saturation: bm25 / (bm25 + SATURATION).
K1, B, SATURATION = 1.2, 0.75, 5.0


def terms(text: str) -> list[str]:
    """Lower-cased words without stopwords, with plural and -ing/-ed endings cut."""
    return [_stem(word) for word in WORD.findall(text.casefold()) if word not in STOPWORDS]


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)]
    return word


class KeywordIndex:
    """Postings of every term: chunk indexes and term frequencies, as numpy arrays."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.count = len(texts)
        lengths = np.zeros(self.count, dtype=np.float32)
        postings: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for index, text in enumerate(texts):
            counted = Counter(terms(text))
            lengths[index] = sum(counted.values())
            for term, frequency in counted.items():
                rows, freqs = postings[term]
                rows.append(index)
                freqs.append(frequency)
        average = float(lengths.mean()) if self.count else 1.0
        self._norm = K1 * (1 - B + B * lengths / max(average, 1.0))
        self._postings = {
            term: (np.array(rows, dtype=np.int64), np.array(freqs, dtype=np.float32))
            for term, (rows, freqs) in postings.items()
        }

    def scores(self, query: str) -> np.ndarray:
        """BM25 of every chunk for ``query`` (zeros where no term matches)."""
        out = np.zeros(self.count, dtype=np.float32)
        for term in set(terms(query)):
            found = self._postings.get(term)
            if found is None:
                continue
            rows, freqs = found
            idf = math.log(1 + (self.count - len(rows) + 0.5) / (len(rows) + 0.5))
            out[rows] += idf * freqs * (K1 + 1) / (freqs + self._norm[rows])
        return out

    def bonus(self, query: str, weight: float) -> np.ndarray:
        """``weight * bm25 / (bm25 + SATURATION)``: between 0 and ``weight``."""
        if weight <= 0 or self.count == 0:
            return np.zeros(self.count, dtype=np.float32)
        bm25 = self.scores(query)
        return (weight * bm25 / (bm25 + SATURATION)).astype(np.float32)
