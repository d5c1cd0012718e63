"""Split a document into passages: by headings first, then by sentences, with overlap.

A passage is what the LLM reads and what the embedder sees, so it is sized for the small
e5 model and for a short spoken answer: a section of up to ``max_words`` words stays one
passage; a longer one is cut at sentence ends into passages of about ``target_words``,
each starting with the last sentence or two of the one before (``overlap_words``) so a
fact that spans the cut is whole in at least one passage. Every passage keeps the path
of headings above it ("Incubation > Turning the eggs"), which is embedded with its text:
the headings say what a passage is about better than its sentences often do.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
#: A sentence ends at . ! or ? (maybe closed by a quote or bracket) before a capital,
#: a digit or an opening quote/bracket.
_CLOSING, _OPENING = "\"'\u201d\u2019)\\]", "\"'\u201c\u2018(\\["
SENTENCE_END = re.compile(rf"(?<=[.!?])([{_CLOSING}]*)\s+(?=[{_OPENING}]?[A-Z0-9\u00c0-\u00dd])")
ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "dr", "mr", "mrs", "ms", "st", "no", "vs", "approx", "fig", "cf"}
)
PATH_SEPARATOR = " > "


@dataclass(frozen=True)
class ChunkDraft:
    position: int
    heading_path: str
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())

    def embedding_text(self) -> str:
        """What the embedder reads: the headings, then the passage."""
        return f"{self.heading_path}: {self.text}" if self.heading_path else self.text


@dataclass
class _Section:
    path: tuple[str, ...]
    lines: list[str]


def normalise(text: str) -> str:
    """Case and whitespace folded: what decides whether a passage changed."""
    return " ".join(text.split()).casefold()


def sentences_split(text: str) -> list[str]:
    """Sentences of one paragraph, abbreviations such as "e.g." left whole."""
    sentences: list[str] = []
    start = 0
    for match in SENTENCE_END.finditer(text):
        before = text[start : match.start()]
        last_word = before.rsplit(None, 1)[-1] if before.split() else ""
        if last_word.rstrip(".").casefold() in ABBREVIATIONS:
            continue
        sentences.append(text[start : match.end(1)].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if sentence]


def _sections(text: str, *, headed: bool) -> list[_Section]:
    sections = [_Section(path=(), lines=[])]
    stack: list[tuple[int, str]] = []
    for line in text.split("\n"):
        match = HEADING.match(line) if headed else None
        if match is None:
            sections[-1].lines.append(line)
            continue
        level, title = len(match.group(1)), match.group(2).strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        sections.append(_Section(path=tuple(t for _, t in stack), lines=[]))
    return sections


def _units(lines: list[str]) -> list[str]:
    """Sentences of a section; a list item or a table row is a sentence of its own."""
    units: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            units.extend(sentences_split(" ".join(paragraph)))
            paragraph.clear()

    for line in lines:
        stripped = line.strip()
        if not stripped:
            flush()
        elif LIST_ITEM.match(stripped) or stripped.startswith("|"):
            flush()
            item = LIST_ITEM.sub("", stripped).strip(" |")
            units.extend(sentences_split(re.sub(r"\s*\|\s*", " | ", item)))
        else:
            paragraph.append(stripped)
    flush()
    return units


def _word_windows(sentence: str, size: int, overlap: int) -> list[str]:
    """A run-on "sentence" longer than a passage (a PDF table, say), cut by words."""
    words = sentence.split()
    step = max(1, size - overlap)
    return [" ".join(words[i : i + size]) for i in range(0, max(1, len(words) - overlap), step)]


def _pack(units: list[str], *, target: int, limit: int, overlap: int) -> list[str]:
    """Sentences → passages of about ``target`` words, overlapping by whole sentences."""
    pieces: list[str] = []
    for unit in units:
        pieces.extend(_word_windows(unit, limit, overlap) if len(unit.split()) > limit else [unit])
    total = sum(len(piece.split()) for piece in pieces)
    if total <= limit:
        return [" ".join(pieces)] if pieces else []
    # Even passages: a 130-word section becomes two of ~65, not one of 90 and one of 40.
    aim = total / math.ceil(total / target)
    passages: list[str] = []
    current: list[str] = []
    fresh = 0  # words in ``current`` that are not overlap from the previous passage
    for piece in pieces:
        words = len(piece.split())
        size = sum(len(p.split()) for p in current)
        if current and fresh and size + words > aim and size + words > limit * 0.5:
            passages.append(" ".join(current))
            carried: list[str] = []
            for previous in reversed(current):
                if sum(len(p.split()) for p in carried) + len(previous.split()) > overlap:
                    break
                carried.insert(0, previous)
            current, fresh = carried, 0
        current.append(piece)
        fresh += words
    if fresh:
        passages.append(" ".join(current))
    return passages


def chunks_split(
    text: str,
    *,
    headed: bool,
    target_words: int = 90,
    max_words: int = 120,
    overlap_words: int = 25,
) -> list[ChunkDraft]:
    """Passages of ``text`` in reading order.

    ``headed``: ``#`` lines are headings (markdown, HTML); otherwise (plain text, PDF)
    paragraphs and sentences alone decide the cuts.
    """
    drafts: list[ChunkDraft] = []
    for section in _sections(text, headed=headed):
        path = PATH_SEPARATOR.join(section.path)
        packed = _pack(
            _units(section.lines), target=target_words, limit=max_words, overlap=overlap_words
        )
        for passage in packed:
            drafts.append(ChunkDraft(position=len(drafts), heading_path=path, text=passage))
    return drafts
