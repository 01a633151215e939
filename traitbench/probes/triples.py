"""The contrastive misalignment probe's triples (no torch: the probe config checks a user's file at load time).

The packaged file (`misalignment_triples.jsonl`, written for this project: 24 questions, the first 8 Betley et
al.'s free-form questions, 6 triples each, the two answers matched in length and register) is split by question:
even question ids are the design half (for sizing configs), odd ones the held-out half (for reporting).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from traitbench.errors import TraitbenchError
from traitbench.io import read_jsonl

TRIPLES_FILE = Path(__file__).with_name("misalignment_triples.jsonl")
SPLITS = ("design", "heldout", "all")


@lru_cache(maxsize=None)
def load_triples(path: str | Path = TRIPLES_FILE) -> tuple[dict, ...]:
    """Every triple of a JSONL file (`qid`: an integer, `question`, `aligned`, `misaligned`: non-empty text);
    a missing field, an empty text, a bad id or a non-UTF-8 byte is a one-line TraitbenchError."""
    rows = read_jsonl(path, required=("qid", "question", "aligned", "misaligned"))
    for i, r in enumerate(rows, 1):
        if not isinstance(r["qid"], int) or isinstance(r["qid"], bool) or r["qid"] < 0:
            raise TraitbenchError(f"{path}: triple {i}: qid must be an integer of 0 or more, got {r['qid']!r}")
        for k in ("question", "aligned", "misaligned"):
            if not isinstance(r[k], str) or not r[k].strip():
                raise TraitbenchError(f"{path}: triple {i}: {k} must be non-empty text")
    if not rows:
        raise TraitbenchError(f"{path}: no triples")
    return tuple(rows)


def triples(split: str = "heldout", path: str | Path | None = None) -> list[dict]:
    """The triples of one half of `path` (None: the packaged file): design (even question ids), heldout (odd) or
    all."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    return [t for t in load_triples(path or TRIPLES_FILE)
            if split == "all" or (t["qid"] % 2 == 0) == (split == "design")]
