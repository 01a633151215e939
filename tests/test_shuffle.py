"""The shuffled-numbers ablation keeps each row's numbers (within) or the dataset's (across) and every format."""

import re
from collections import Counter

from traitbench.datasets.filter import filter_rows
from traitbench.datasets.shuffle import shuffle_rows

ROWS = [
    {"idx": 0, "prompt": "p0", "completion": "[12, 345, 7, 88, 901]", "numbers": [12, 345, 7, 88, 901]},
    {"idx": 1, "prompt": "p1", "completion": "007;\n42;\n100.", "numbers": [7, 42, 100]},
    {"idx": 2, "prompt": "p2", "completion": "1 2 3 4 5 6 7 8 9 10", "numbers": list(range(1, 11))},
    {"idx": 3, "prompt": "p3", "completion": "(999, 0)", "numbers": [999, 0]},
]


def _format(text: str) -> str:
    return re.sub(r"[0-9]+", "#", text)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[0-9]+", text)


def test_within_keeps_each_rows_multiset_and_format():
    out = shuffle_rows(ROWS, "within", seed=3)
    assert [r["idx"] for r in out] == [0, 1, 2, 3] and all(r["shuffle"] == "within" for r in out)
    for a, b in zip(ROWS, out):
        assert _format(b["completion"]) == _format(a["completion"])
        assert Counter(_tokens(b["completion"])) == Counter(_tokens(a["completion"]))
        assert b["numbers"] == [int(x) for x in _tokens(b["completion"])]
    assert any(a["completion"] != b["completion"] for a, b in zip(ROWS, out))  # something moved
    assert "007" in out[1]["completion"]  # written forms move as they are


def test_across_keeps_the_pool_each_rows_count_and_format():
    out = shuffle_rows(ROWS, "across", seed=3)
    for a, b in zip(ROWS, out):
        assert _format(b["completion"]) == _format(a["completion"])
        assert len(b["numbers"]) == len(a["numbers"])
    pool = lambda rows: Counter(t for r in rows for t in _tokens(r["completion"]))  # noqa: E731
    assert pool(out) == pool(ROWS)
    assert any(Counter(_tokens(a["completion"])) != Counter(_tokens(b["completion"])) for a, b in zip(ROWS, out))


def test_shuffled_rows_pass_the_filter_like_the_originals_and_none_is_identity():
    assert shuffle_rows(ROWS, "none", 0) is ROWS
    for mode in ("within", "across"):
        kept = filter_rows(shuffle_rows(ROWS, mode, 1), "owl", frozenset())[0]
        assert len(kept) == len(filter_rows(ROWS, "owl", frozenset())[0]) == len(ROWS)
    assert shuffle_rows(ROWS, "within", 1) == shuffle_rows(ROWS, "within", 1)  # seeded
