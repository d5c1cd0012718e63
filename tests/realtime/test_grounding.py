"""The turn's system prompt with and without knowledge-base passages."""

from __future__ import annotations

from realtime.grounding import GROUNDED, NOTHING_FOUND, grounded_system_prompt, key_sentences

BASE = "You are Voiceapp."
INCUBATION = (
    "Chicken eggs hatch on day 21 of incubation. Day 18 is lockdown: stop turning and raise "
    "the humidity. Keep the hatched chicks inside until they are dry."
)
BROODER = (
    "Day-old chicks cannot keep themselves warm. In the first week keep the brooder at 32 "
    "to 35 °C. Lower the temperature by 3 °C every week until it reaches 21 °C."
)


def passage(text: str, title: str = "Handbook") -> dict[str, object]:
    return {"document_id": 1, "title": title, "chunk_id": "c1", "text": text, "score": 0.9}


def test_the_sentences_sharing_most_words_with_the_question_come_first() -> None:
    question = "On which day of incubation do chicken eggs hatch?"
    best, second = key_sentences(question, [passage(INCUBATION), passage(BROODER)])
    assert best == "Chicken eggs hatch on day 21 of incubation."
    assert second.startswith("Day 18 is lockdown")


def test_the_best_passage_wins_a_tie() -> None:
    question = "How warm should the brooder be in the first week?"
    [best] = key_sentences(question, [passage(BROODER), passage(INCUBATION)], limit=1)
    assert best == "In the first week keep the brooder at 32 to 35 °C."


def test_facts_come_with_instructions_to_answer_from_them() -> None:
    prompt = grounded_system_prompt(BASE, "When do eggs hatch?", [passage(INCUBATION)])
    assert prompt.startswith(BASE)
    assert GROUNDED in prompt
    assert prompt.endswith(
        "Facts:\n- Chicken eggs hatch on day 21 of incubation.\n"
        "- Keep the hatched chicks inside until they are dry."
    )


def test_nothing_found_asks_to_say_so_instead_of_guessing() -> None:
    assert grounded_system_prompt(BASE, "Anything?", []) == f"{BASE}\n\n{NOTHING_FOUND}"


def test_an_unreachable_knowledge_base_leaves_the_base_prompt() -> None:
    assert grounded_system_prompt(BASE, "Anything?", None) == BASE


def test_facts_are_cut_to_the_budget_at_a_word_boundary() -> None:
    long = " ".join(f"word{n}" for n in range(500)) + "."
    prompt = grounded_system_prompt(BASE, "word1", [passage(long)], budget=100)
    facts = prompt.split("Facts:\n", 1)[1]
    assert facts.startswith("- word0 word1") and facts.endswith(" …")
    assert len(facts) < 110
