"""ClauseSplitter: early, safe clause boundaries for streamed LLM text."""

# The test texts are typographic on purpose (en dashes, curly quotes, CJK punctuation).
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import random

import pytest

from realtime.clauses import ClauseSplitter, clean_for_speech, count_words, find_boundary


def split_all(text: str, *, chunk: int | None = None, seed: int = 0, **kwargs: int) -> list[str]:
    """Feed ``text`` in pieces (``chunk`` chars, or random 1–4 chars) and collect all clauses."""
    splitter = ClauseSplitter(**kwargs)
    rng = random.Random(seed)
    out: list[str] = []
    i = 0
    while i < len(text):
        size = chunk or rng.randint(1, 4)
        out += splitter.feed(text[i : i + size])
        i += size
    rest = splitter.flush()
    if rest:
        out.append(rest)
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Wait! Really?! Yes.", ["Wait!", "Really?!", "Yes."]),
        ("It costs 3.5 dollars. That is cheap.", ["It costs 3.5 dollars.", "That is cheap."]),
        ("About 1,000 people came. Fine.", ["About 1,000 people came.", "Fine."]),
        ("Meet at 6:30 tonight. Bye.", ["Meet at 6:30 tonight.", "Bye."]),
        ("Dr. Smith and Mr. Jones met. Good.", ["Dr. Smith and Mr. Jones met.", "Good."]),
        ("Use fruit, e.g. apples or pears. Done.", ["Use fruit, e.g. apples or pears.", "Done."]),
        ("That is, i.e. the same thing. Ok.", ["That is, i.e. the same thing.", "Ok."]),
        ("It opens at 9 a.m. Then it closes.", ["It opens at 9 a.m.", "Then it closes."]),
        ("It opens at 9 a.m. and closes late.", ["It opens at 9 a.m. and closes late."]),
        ("Apples, pears, etc. are fruit.", ["Apples, pears, etc. are fruit."]),
        ("J. R. R. Tolkien wrote it.", ["J. R. R. Tolkien wrote it."]),
        ("The answer is no. Sorry.", ["The answer is no.", "Sorry."]),
        ("See No. 5 on the list.", ["See No. 5 on the list."]),
        ("It is on Main St. near the park.", ["It is on Main St. near the park."]),
        ("Version 2.0.1 is out. Update.", ["Version 2.0.1 is out.", "Update."]),
        ("See example.com for more. Thanks.", ["See example.com for more.", "Thanks."]),
        ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
        ("Well... maybe later.", ["Well...", "maybe later."]),
        ("这是第一句。这是第二句。", ["这是第一句。", "这是第二句。"]),
    ],
)
def test_sentences_split_only_at_real_sentence_ends(text: str, expected: list[str]) -> None:
    assert split_all(text, chunk=1) == expected
    assert split_all(text, seed=7) == expected
    assert split_all(text, chunk=len(text)) == expected


def test_short_clause_is_not_split_at_comma() -> None:
    # "Yes," alone would be a choppy clip: the first clause needs first_min_words words.
    assert split_all("Yes, it is open today and tomorrow until late.") == [
        "Yes, it is open today and tomorrow until late."
    ]


def test_first_clause_splits_earlier_than_later_ones() -> None:
    text = "The oven is hot, so wait, then bake it, and it will be fine, I think."
    assert split_all(text, chunk=1) == [
        "The oven is hot,",  # 4 words ≥ first_min_words=3
        "so wait, then bake it,",  # "so wait," has only 2 words < min_words=4
        "and it will be fine,",
        "I think.",
    ]


def test_first_min_words_applies_to_the_first_clause_only() -> None:
    splitter = ClauseSplitter(min_words=4, first_min_words=2)
    assert splitter.feed("Sure thing, ") == ["Sure thing,"]
    assert splitter.feed("you can, ") == []
    assert splitter.feed("of course. ") == ["you can, of course."]


@pytest.mark.parametrize("punct", [",", ";", ":", " —", "—"])
def test_clause_punctuation_splits_after_enough_words(punct: str) -> None:
    out = split_all(f"Chicken eggs need warmth{punct} around 37.5 degrees.", chunk=2)
    assert out[0].startswith("Chicken eggs need warmth")
    assert len(out) == 2
    assert out[1] == "around 37.5 degrees."


def test_no_split_inside_numbers_even_when_tokens_break_there() -> None:
    splitter = ClauseSplitter(first_min_words=1, min_words=1)
    out: list[str] = []
    for token in ["It is 3", ".", "5 and 1", ",", "000 and 3", ".", " Done", "."]:
        out += splitter.feed(token)
    out.append(splitter.flush())
    assert out == ["It is 3.5 and 1,000 and 3.", "Done."]


def test_boundary_waits_for_the_next_character() -> None:
    splitter = ClauseSplitter()
    assert splitter.feed("It costs 3.") == []  # "3." might be "3.5"
    assert splitter.feed(" Then") == ["It costs 3."]
    assert splitter.flush() == "Then"


def test_flush_returns_the_rest_and_resets() -> None:
    splitter = ClauseSplitter()
    assert splitter.feed("No final punctuation here") == []
    assert splitter.flush() == "No final punctuation here"
    assert splitter.flush() == ""
    assert splitter.feed("Ends with a dot.") == []
    assert splitter.flush() == "Ends with a dot."


def test_max_length_forces_a_split_at_a_space() -> None:
    text = " ".join(["word"] * 120)
    out = split_all(text, max_chars=200)
    assert all(len(c) <= 200 for c in out)
    assert len(out) >= 3
    assert " ".join(out) == text
    assert all(not c.startswith(" ") and not c.endswith(" ") for c in out)


def test_max_length_splits_unbroken_text_hard() -> None:
    out = split_all("x" * 450, max_chars=200)
    assert [len(c) for c in out] == [200, 200, 50]


def test_markdown_and_emoji_are_stripped() -> None:
    text = (
        "## Quick answer\n"
        "**Canberra** is the *capital* 🇦🇺🎉.\n"
        "- First `item`\n"
        "* Second item\n"
        "> A quote here\n"
        "---\n"
        "1. Step one\n"
        "See [the docs](https://example.com/a.b) for __more__ ✨\n"
    )
    assert split_all(text) == [
        "Quick answer",
        "Canberra is the capital.",
        "First item",
        "Second item",
        "A quote here",
        "1. Step one",
        "See the docs for more",
    ]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("**bold** and *it*", "bold and it"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("C# and F# are languages", "C# and F# are languages"),
        ("#1 hit", "1 hit"),
        ("👍", ""),
        ("---", ""),
        ("   ", ""),
        ("heat — then cool", "heat, then cool"),
        ("10 - 5 is five", "10 - 5 is five"),
        ("red - green", "red, green"),
        ("37.5 °C", "37.5 °C"),
        ("Hello , world", "Hello, world"),
    ],
)
def test_clean_for_speech(raw: str, clean: str) -> None:
    assert clean_for_speech(raw) == clean


def test_count_words() -> None:
    assert count_words("Yes,") == 1
    assert count_words("It's 1,000.5 **dollars**") == 3
    assert count_words("— * #") == 0


def test_find_boundary_is_none_until_decidable() -> None:
    assert find_boundary("Hello there.", 3) is None
    assert find_boundary("Hello there.", 3, final=True) == len("Hello there.")
    assert find_boundary("Hello there. Bye", 3) == len("Hello there.")
    assert find_boundary("At 5 p.m. ", 3) is None  # the next word decides
    assert find_boundary("At 5 p.m. then", 3) is None


LLM_ANSWER = (
    "Great question! Chicken eggs should be incubated at about 37.5 °C (99.5 °F), with "
    "humidity around 50–55% for the first 18 days. After that, raise the humidity to "
    "65–70% for hatching — and stop turning the eggs. Dr. Lee's guide, i.e. the one in "
    "the knowledge base, says hatching takes about 21 days.\n\n"
    "**Key points:**\n"
    "- Keep the temperature steady; even 1.0 °C off can hurt the embryos.\n"
    "- Turn the eggs 3 to 5 times a day 🐣\n"
    "\nLet me know if you'd like more tips!"
)

EXPECTED_CLAUSES = [
    "Great question!",
    "Chicken eggs should be incubated at about 37.5 °C (99.5 °F),",
    "with humidity around 50–55% for the first 18 days.",
    "After that, raise the humidity to 65–70% for hatching,",
    "and stop turning the eggs.",
    "Dr. Lee's guide, i.e. the one in the knowledge base,",
    "says hatching takes about 21 days.",
    "Key points:",
    "Keep the temperature steady;",
    "even 1.0 °C off can hurt the embryos.",
    "Turn the eggs 3 to 5 times a day",
    "Let me know if you'd like more tips!",
]


@pytest.mark.parametrize("seed", range(20))
def test_streamed_llm_answer_in_random_tokens(seed: int) -> None:
    assert split_all(LLM_ANSWER, seed=seed) == EXPECTED_CLAUSES


def test_streamed_answer_emits_the_first_clause_early() -> None:
    splitter = ClauseSplitter()
    fed = ""
    for i, ch in enumerate(LLM_ANSWER):
        fed += ch
        if splitter.feed(ch):
            # The first clause comes out as soon as the character after "!" arrives.
            assert i == len("Great question! ") - 1
            break
    else:
        pytest.fail("no clause emitted")


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        ClauseSplitter(min_words=0)
    with pytest.raises(ValueError):
        ClauseSplitter(max_chars=5)


def _stream(text: str, splitter: ClauseSplitter) -> list[str]:
    clauses: list[str] = []
    for start in range(0, len(text), 3):
        clauses += splitter.feed(text[start : start + 3])
    rest = splitter.flush()
    return [*clauses, rest] if rest else clauses


def test_a_long_opening_without_commas_is_cut_before_a_phrase_word() -> None:
    text = "The incubation temperature for chicken eggs is thirty seven and a half degrees."
    first, rest = _stream(text, ClauseSplitter())
    assert first == "The incubation temperature for chicken eggs"
    assert rest == "is thirty seven and a half degrees."


def test_the_early_cut_applies_to_the_first_clause_only() -> None:
    text = "Sure. " + "the long second sentence goes on and on without any comma at all."
    assert _stream(text, ClauseSplitter()) == [
        "Sure.",
        "the long second sentence goes on and on without any comma at all.",
    ]


def test_the_early_cut_waits_for_complete_words() -> None:
    splitter = ClauseSplitter(first_min_words=2, first_max_words=3)
    assert splitter.feed("one two three fou") == []
    assert splitter.feed("r ") == ["one two three"]
