"""Split a streamed LLM reply into clauses that text-to-speech can start on early.

Time to first audio is dominated by how long we wait before handing text to TTS, so the
splitter releases a clause as soon as it is safe to: at a sentence end always, and at a
clause boundary (, ; : —) once the clause has enough words to sound natural ("Yes," alone
would be a choppy clip). The first clause may be shorter than later ones to start audio
sooner. A boundary is only decided once the character after it has arrived, so "3.5",
"1,000", "6:30" and "Dr. Smith" are never split, whatever the token boundaries are.

Clauses are cleaned of markdown and emoji that a TTS voice would otherwise read aloud.
Pure Python, no Django: the worker calls it per token.
"""

from __future__ import annotations

import re

SENTENCE_END = ".!?…"
CJK_SENTENCE_END = "\u3002\uff01\uff1f"  # ideographic full stop, fullwidth ! ?
CLAUSE_PUNCT = ",;:"
DASHES = "—"
#: Characters that may close a sentence after its terminator: `"Really?" he said`, `**Note.**`.
CLOSERS = "\"')]}*_\u201d\u2019\u00bb`"  # and closing curly quotes, guillemet

#: Abbreviations that never end a sentence (a name or a number follows them: "Dr. Smith").
NEVER_END = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "mt", "vs", "e.g", "i.e", "cf", "approx",
        "lt", "capt", "sgt", "gen", "col",
    }
)  # fmt: skip
#: Abbreviations (and words) that end a sentence only when a capital letter follows:
#: "at 5 p.m. Then", "the answer is no. Sorry" split; "No. 5", "etc. are" do not.
MAYBE_END = frozenset(
    {
        "etc", "inc", "ltd", "co", "corp", "jr", "st", "rd", "ave", "blvd", "no", "nos",
        "vol", "ch", "fig", "sec", "est", "ref", "ext", "tel", "rev", "jan", "feb", "aug",
        "sept", "oct", "nov", "dec", "a.m", "p.m", "u.s", "u.k", "e.u", "ph.d", "al",
    }
)  # fmt: skip
#: Words that begin a phrase: a good place to cut an opening sentence that has no comma.
PHRASE_STARTS = frozenset(
    {
        "and", "but", "or", "so", "because", "which", "that", "who", "when", "where",
        "while", "if", "for", "with", "without", "from", "to", "in", "on", "at", "by",
        "about", "after", "before", "during", "until", "than", "then", "is", "are", "was",
    }
)  # fmt: skip
_ACRONYM = re.compile(r"^(?:[a-z]\.)+[a-z]$", re.IGNORECASE)
_WORD = re.compile("[^\\W_]+(?:['\u2019.,][^\\W_]+)*")  # "don't", "1,000", "3.5": one word
_LEAD_PUNCT = "\"'([{*_\u201c\u2018\u00ab"

_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)")
_HEADING = re.compile(r"^\s*#{1,6}\s*", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>+\s?", re.MULTILINE)
_BULLET = re.compile(r"^\s*[-*+•·▪‣]\s+", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_=])(?:\s*\1){2,}\s*$", re.MULTILINE)
_HASH = re.compile(r"(?<!\w)#+")
_UNDERSCORE_EMPHASIS = re.compile(r"(?<![^\W_])_+|_+(?![^\W_])")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, supplemental symbols
    "\U00002600-\U000027bf"  # miscellaneous symbols and dingbats
    "\U00002b00-\U00002bff"  # arrows and stars used as emoji
    "\U0001f1e6-\U0001f1ff"  # regional indicators (flags)
    "\U000e0020-\U000e007f"  # tag characters
    "\ufe0f\ufe0e\u200d\u20e3"  # variation selectors, zero-width joiner, keycap
    "]+"
)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?…])")
_DASH_RUN = re.compile(r"\s*[—]\s*")
_SPACED_DASH = re.compile("(?<=[^\\W\\d_])\\s+[-\u2013]\\s+(?=[^\\W\\d_])")


def count_words(text: str) -> int:
    """Spoken words in ``text``: "1,000" and "don't" are one word each, markdown is none."""
    return len(_WORD.findall(text))


def clean_for_speech(text: str) -> str:
    """Strip what a TTS voice would read aloud but a listener should not hear.

    Removes markdown emphasis, headings, bullets, code ticks, link targets and emoji, turns
    dashes into commas (a pause) and collapses whitespace. Returns "" when nothing speakable
    is left (a horizontal rule, an emoji-only line).
    """
    text = _LINK.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = text.replace("*", "").replace("`", "").replace("~~", "")
    text = _HASH.sub("", text)
    text = _UNDERSCORE_EMPHASIS.sub("", text)
    text = _EMOJI.sub("", text)
    text = _DASH_RUN.sub(", ", text)
    text = _SPACED_DASH.sub(", ", text)
    text = " ".join(text.split())
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = re.sub(r"^[,;:\s]+", "", text)
    text = re.sub(r",(?:\s*,)+", ",", text)
    return text if count_words(text) else ""


def _word_before(text: str, end: int) -> str:
    """The whitespace-delimited token ending at ``end``, lower-cased, opening punctuation off."""
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end].lstrip(_LEAD_PUNCT)


def _is_line_start(text: str, pos: int) -> bool:
    """True when only whitespace or markdown lies between the line start and ``pos``."""
    line_start = text.rfind("\n", 0, pos) + 1
    return not text[line_start:pos].strip(" \t#>*-+•")


def _after_abbreviation(text: str, pos: int) -> bool:
    """True for the comma in "e.g., apples": splitting there would strand the abbreviation."""
    return text[pos - 1 : pos] == "." and _word_before(text, pos - 1).lower() in NEVER_END


def _skip_closers(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in CLOSERS:
        pos += 1
    return pos


def _period_ends_sentence(text: str, dot: int, after: int, final: bool) -> bool | None:
    """Whether the "." at ``dot`` ends a sentence; None when the next word must decide it."""
    token = _word_before(text, dot)
    lowered = token.lower()
    if not token:
        return True
    if lowered in NEVER_END:
        return False
    if len(token) == 1 and token.isalpha() and token.isupper():
        return False  # an initial: "J. R. R. Tolkien"
    if token.isdigit() and _is_line_start(text, dot - len(token)):
        return False  # an ordered-list marker: "1. Preheat the oven"
    if lowered in MAYBE_END or _ACRONYM.match(lowered):
        nxt = after
        while nxt < len(text) and text[nxt].isspace():
            nxt += 1
        if nxt >= len(text):
            return True if final else None
        return text[nxt].isupper() or text[nxt] == "\n"
    return True


def find_boundary(text: str, min_words: int, *, final: bool = False) -> int | None:
    """End index (exclusive) of the first complete clause in ``text``, or None.

    ``final`` says no more text will come, so a terminator at the very end counts.
    Returns None both when there is no boundary and when the next characters decide it.
    """
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch == "\n":
            if count_words(text[:i]):
                return i + 1
        elif ch in CJK_SENTENCE_END:
            return _skip_closers(text, i + 1)
        elif ch in SENTENCE_END:
            run_end = i
            while run_end < n and text[run_end] in SENTENCE_END:
                run_end += 1
            after = _skip_closers(text, run_end)
            if after >= n:
                return after if final and count_words(text[:i]) else None
            if text[after].isspace() and count_words(text[:i]):
                verdict: bool | None = True
                if ch == "." and run_end - i == 1:
                    verdict = _period_ends_sentence(text, i, after, final)
                if verdict is None:
                    return None
                if verdict:
                    return after
            i = run_end
            continue
        elif ch in CLAUSE_PUNCT:
            after = _skip_closers(text, i + 1)
            if count_words(text[:i]) >= min_words and not _after_abbreviation(text, i):
                if after >= n:
                    return after if final else None
                if text[after].isspace():
                    return after
        elif ch in DASHES or (
            ch in "-\u2013"
            and 1 < i < n - 1
            and text[i - 1] == " "
            and text[i + 1] == " "
            and text[i - 2].isalpha()
            and not _is_line_start(text, i)
        ):
            if count_words(text[:i]) >= min_words:
                return i + 1
        i += 1
    return None


class ClauseSplitter:
    """Turn a stream of LLM tokens into speakable clauses, as early as it is safe to.

    ``feed(token)`` returns the clauses completed by that token (often none); ``flush()``
    returns what is left when the stream ends and resets the splitter for the next reply.
    """

    def __init__(
        self,
        *,
        min_words: int = 4,
        first_min_words: int = 3,
        first_max_words: int = 8,
        max_chars: int = 200,
    ) -> None:
        if min_words < 1 or first_min_words < 1 or max_chars < 20:
            raise ValueError("min_words and first_min_words must be >= 1, max_chars >= 20")
        if first_max_words <= first_min_words:
            raise ValueError("first_max_words must be larger than first_min_words")
        self.min_words = min_words
        self.first_min_words = first_min_words
        self.first_max_words = first_max_words
        self.max_chars = max_chars
        self._pending = ""
        self._emitted = 0

    def feed(self, token: str) -> list[str]:
        """Add one token; return the clauses it completed, cleaned for speech."""
        self._pending += token
        return self._drain(final=False)

    def flush(self) -> str:
        """The rest of the reply as one clause ("" if nothing speakable); resets state."""
        clauses = self._drain(final=True)
        rest = clean_for_speech(self._pending)
        if rest:
            clauses.append(rest)
        self.reset()
        return " ".join(clauses)

    def reset(self) -> None:
        self._pending = ""
        self._emitted = 0

    def _drain(self, *, final: bool) -> list[str]:
        out: list[str] = []
        while self._pending:
            min_words = self.first_min_words if self._emitted == 0 else self.min_words
            end = find_boundary(self._pending, min_words, final=final)
            if end is None and self._emitted == 0 and not final:
                end = self._early_first_split()
            if end is None and len(self._pending) > self.max_chars:
                end = self._forced_split()
            if end is None:
                break
            clause = clean_for_speech(self._pending[:end])
            self._pending = self._pending[end:].lstrip()
            if clause:
                out.append(clause)
                self._emitted += 1
        return out

    def _early_first_split(self) -> int | None:
        """Release the first clause after ``first_max_words`` even without punctuation.

        The first audio waits for the first clause; a long opening sentence without a
        comma would hold it back by a whole sentence of generation. The cut goes before
        a word that starts a phrase ("for", "and", "which", ...) when there is one, so
        the two halves still sound natural. Only complete words count: the word after
        the cut must already have begun.
        """
        words = list(re.finditer(r"\S+", self._pending))
        complete = len(words) if self._pending[-1:].isspace() else len(words) - 1
        if complete <= self.first_max_words:
            return None
        candidates = words[self.first_min_words : self.first_max_words + 1]
        for word in reversed(candidates):
            if word.group().lower().strip("\"'(") in PHRASE_STARTS:
                return word.start()
        return words[self.first_max_words].start()

    def _forced_split(self) -> int:
        """Split an over-long run without punctuation at the last space within the limit."""
        cut = self._pending.rfind(" ", 0, self.max_chars + 1)
        return cut + 1 if cut > 0 else self.max_chars
