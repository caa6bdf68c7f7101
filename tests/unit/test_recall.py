"""recall@k against an exact search, tie-aware: exact kNN scores 1.0, a perturbed answer does not."""

from __future__ import annotations

from provisioning.smoke_tests import recall_at_k

EXACT = [("a", 0.99), ("b", 0.95), ("c", 0.90), ("d", 0.90), ("e", 0.50), ("f", 0.10)]


def test_identical_answer_has_recall_one() -> None:
    assert recall_at_k(["a", "b", "c"], EXACT, 3) == 1.0


def test_ties_at_the_kth_score_count_as_correct() -> None:
    assert recall_at_k(["a", "b", "d"], EXACT, 3) == 1.0


def test_perturbed_answer_loses_recall() -> None:
    assert recall_at_k(["a", "b", "e"], EXACT, 3) == 2 / 3
    assert recall_at_k(["f", "e", "a"], EXACT, 3) == 1 / 3
    assert recall_at_k([], EXACT, 3) == 0.0


def test_fewer_documents_than_k() -> None:
    assert recall_at_k(["a", "b"], [("a", 1.0), ("b", 0.5)], 10) == 1.0
    assert recall_at_k([], [], 5) == 1.0
