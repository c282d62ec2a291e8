"""Mutation suite of notebooks 00-03: every plausible wrong answer is rejected with a message that
names its cause, every correct variant passes (answers in ``tests/mutations/``)."""

from __future__ import annotations

import pytest
from mutations import nb0, nb1, nb2, nb3

from gruunet_edu.exercises.core import exercise_of

MODULES = (nb0, nb1, nb2, nb3)
WRONG = [(ex, *item) for m in MODULES for ex, items in m.WRONG.items() for item in items]
RIGHT = [(ex, *item) for m in MODULES for ex, items in m.RIGHT.items() for item in items]


def counts() -> dict[str, tuple[int, int]]:
    """Exercise -> (wrong answers, correct variants)."""
    out: dict[str, tuple[int, int]] = {}
    for m in MODULES:
        for ex in m.WRONG:
            out[ex] = (len(m.WRONG[ex]), len(m.RIGHT.get(ex, ())))
    return out


def test_every_exercise_has_enough_answers():
    for ex, (wrong, right) in counts().items():
        assert wrong >= 12 and right >= 2, (ex, wrong, right)
    assert len(counts()) == 8


@pytest.mark.parametrize(
    ("exercise", "label", "answer", "phrase"), WRONG, ids=[f"{w[0]}: {w[1]}" for w in WRONG]
)
def test_wrong_answer_is_rejected_with_its_cause(exercise, label, answer, phrase):
    result = exercise_of(exercise).evaluate(answer)
    assert not result.passed, f"{label} passed"
    assert result.status in {"failed", "error"}, result.text()
    assert phrase in result.message, result.message
    assert "compare your code with the equations above" not in result.message  # the bare fallback
    assert ".." not in result.text().replace("...", "")


@pytest.mark.parametrize(
    ("exercise", "label", "answer"), RIGHT, ids=[f"{r[0]}: {r[1]}" for r in RIGHT]
)
def test_correct_variant_passes(exercise, label, answer):
    result = exercise_of(exercise).evaluate(answer)
    assert result.passed, f"{label}: {result.text()}"


if __name__ == "__main__":
    for name, (wrong, right) in counts().items():
        print(f"{name:12s} {wrong:3d} wrong answers, {right} correct variants")
