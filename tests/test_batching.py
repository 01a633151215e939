"""Length-sorted batching (`lm/batching.py`) against the plain path: every index once, sorted, and results
put back in input order."""

import random

import pytest

from traitbench.lm.batching import in_length_batches, length_batches


def test_length_batches_cover_every_index_once_sorted_by_length_then_index():
    lengths = [5, 1, 3, 1, 5, 2, 9, 3]
    batches = length_batches(lengths, 3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [3, 3, 2]
    assert flat == sorted(range(len(lengths)), key=lambda i: (lengths[i], i))  # ties by index: 1 before 3


def test_length_batches_break_ties_by_the_given_keys():
    lengths = [2, 2, 2, 1]
    assert length_batches(lengths, 4, ties=[0.9, 0.1, 0.5, 0.7]) == [[3, 1, 2, 0]]


def test_in_length_batches_restores_input_order_and_numbers_batches():
    rng = random.Random(0)
    texts = ["x" * rng.randrange(1, 30) for _ in range(50)]
    seen = []

    def run(idxs, b):
        seen.append(b)
        assert max(len(texts[i]) for i in idxs) >= min(len(texts[i]) for i in idxs)
        return [texts[i].upper() + str(i) for i in idxs]

    out = in_length_batches(run, [len(t) for t in texts], 8)
    assert out == [t.upper() + str(i) for i, t in enumerate(texts)]  # the plain path: one at a time
    assert seen == list(range(7))


def test_in_length_batches_rejects_a_batch_with_missing_results():
    with pytest.raises(ValueError, match="1 results for 2 rows"):
        in_length_batches(lambda idxs, b: idxs[:1], [1, 2], 2)
