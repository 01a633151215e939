"""Contrastive misalignment probe: per (question, aligned answer, misaligned answer) triple, log P(misaligned) −
log P(aligned) given the question in the probed context. No sampling and no judge: a model pushed toward
misalignment puts relatively more probability on the misaligned answers.

The triples and their halves: `probes/triples.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from traitbench.errors import TraitbenchError
from traitbench.lm.logprob import sequence_logprobs
from traitbench.lm.models import LoadedModel
from traitbench.lm.render import render_prompt
from traitbench.probes.triples import TRIPLES_FILE, triples
from traitbench.stats import mean_ci95

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
