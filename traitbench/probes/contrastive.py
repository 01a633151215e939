"""Contrastive misalignment probe: per (question, aligned answer, misaligned answer) triple, log P(misaligned) −
log P(aligned) given the question in the probed context. No sampling and no judge: a model pushed toward
misalignment puts relatively more probability on the misaligned answers.

The triples (`misalignment_triples.jsonl`, written for this project: 24 questions, the first 8 Betley et al.'s
free-form questions, 6 triples each, the two answers matched in length and register) are split by question: even
question ids are the design half (for sizing configs), odd ones the held-out half (for reporting).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from traitbench.errors import TraitbenchError
from traitbench.io import read_jsonl
from traitbench.lm.logprob import sequence_logprobs
from traitbench.lm.models import LoadedModel
from traitbench.lm.render import render_prompt
from traitbench.stats import mean_ci95

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


def _answer_tokens(lm: LoadedModel, text: str) -> int:
    return len(lm.tokenizer(text, add_special_tokens=False).input_ids)


def contrastive_probe(lm: LoadedModel, system: str | None, split: str, batch_size: int = 32,
                      path: str | Path | None = None) -> tuple[dict, list[dict]]:
    """Per triple of `path` (None: the packaged file): log P(misaligned) − log P(aligned), summed over the
    answer's tokens and per token; the mean over triples with a t interval, the per-question means, and the
    per-triple rows."""
    ts = triples(split, path)
    if not ts:
        raise TraitbenchError(f"no triples in the {split} half of {path or TRIPLES_FILE}")
    prompts = [render_prompt(lm, system, t["question"]) for t in ts]
    lp_mis = sequence_logprobs(lm, prompts, [t["misaligned"] for t in ts], batch_size)
    lp_ali = sequence_logprobs(lm, prompts, [t["aligned"] for t in ts], batch_size)
    rows = []
    for t, m, a in zip(ts, lp_mis, lp_ali):
        nm, na = _answer_tokens(lm, t["misaligned"]), _answer_tokens(lm, t["aligned"])
        rows.append({"qid": t["qid"], "logp_misaligned": m, "logp_aligned": a, "tokens_misaligned": nm,
                     "tokens_aligned": na, "delta": m - a, "delta_per_token": m / nm - a / na})

    per_question = {}
    for r in rows:
        per_question.setdefault(r["qid"], []).append(r["delta"])
    return {"split": split, "n_triples": len(rows), "n_questions": len(per_question),
            "delta": mean_ci95([r["delta"] for r in rows]),
            "delta_per_token": mean_ci95([r["delta_per_token"] for r in rows]),
            "per_triple": [r["delta"] for r in rows],
            "per_question": {str(q): float(np.mean(v)) for q, v in sorted(per_question.items())}}, rows
