"""Chunking: headings first, then sentences, passages sized for e5, with overlap."""

from __future__ import annotations

import itertools
from pathlib import Path

from knowledge.chunking import chunks_split, normalise, sentences_split
from tests.knowledge.conftest import HANDBOOK

DEMO = Path(__file__).resolve().parents[2] / "knowledge" / "demo" / "poultry-handbook.md"


def test_each_section_is_a_passage_with_its_heading_path() -> None:
    drafts = chunks_split(HANDBOOK, headed=True)
    assert [d.heading_path for d in drafts] == [
        "Farm handbook > Incubation > Temperature",
        "Farm handbook > Incubation > Turning",
        "Farm handbook > Feeding > Layer feed",
    ]
    assert drafts[0].text == (
        "Keep the incubator at 37.5 degrees Celsius. A steady temperature matters most."
    )
    assert [d.position for d in drafts] == [0, 1, 2]
    assert drafts[1].embedding_text() == (
        "Farm handbook > Incubation > Turning: Turn the eggs three times a day. "
        "Stop turning on day 18."
    )


def test_without_headings_hash_lines_are_text() -> None:
    drafts = chunks_split("# Not a heading\n\nJust text. More text.", headed=False)
    assert len(drafts) == 1 and drafts[0].heading_path == ""
    assert drafts[0].text == "# Not a heading Just text. More text."


def test_a_long_section_is_cut_at_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(40)]
    drafts = chunks_split(
        "## Long\n\n" + " ".join(sentences),
        headed=True,
        target_words=60,
        max_words=80,
        overlap_words=15,
    )
    assert len(drafts) >= 4
    for draft in drafts:
        assert draft.words <= 80
        assert draft.text.endswith(".")  # whole sentences only
    for before, after in itertools.pairwise(drafts):
        # The next passage starts with the last whole sentences of this one (<= 15 words).
        shared = [s for s in sentences_split(after.text) if s in sentences_split(before.text)]
        assert shared and sentences_split(before.text)[-len(shared) :] == shared
        assert sum(len(s.split()) for s in shared) <= 15
    joined = " ".join(d.text for d in drafts)
    assert all(sentence in joined for sentence in sentences)  # nothing lost


def test_a_run_on_sentence_is_cut_by_words() -> None:
    drafts = chunks_split("word " * 300, headed=False, target_words=90, max_words=120)
    assert all(d.words <= 120 for d in drafts)
    assert sum(d.words for d in drafts) >= 300


def test_list_items_are_sentences() -> None:
    drafts = chunks_split("## Kit\n\n- a drinker\n- a feeder\n1. bedding", headed=True)
    assert drafts[0].text == "a drinker a feeder bedding"


def test_sentences_split_keeps_abbreviations_and_quotes() -> None:
    assert sentences_split('Use e.g. Pine shavings. Keep 37.5 °C. Say "Done." Next.') == [
        "Use e.g. Pine shavings.",
        "Keep 37.5 °C.",
        'Say "Done."',
        "Next.",
    ]


def test_normalise_ignores_case_and_spacing() -> None:
    assert normalise("Keep  the\nEggs WARM ") == normalise("keep the eggs warm")


def test_the_demo_handbook_gives_passages_sized_for_e5() -> None:
    drafts = chunks_split(DEMO.read_text(), headed=True)
    assert len(drafts) >= 40
    words = [d.words for d in drafts]
    assert max(words) <= 120 and sorted(words)[len(words) // 2] >= 50
    assert any("37.5 °C (99.5 °F)" in d.text for d in drafts)
