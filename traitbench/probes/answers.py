"""The probes' answer sampler: one answer per rendered prompt at temperature 1, shared by every probe that
samples free text (preference, open-ended, misalignment, screening)."""

from __future__ import annotations

from traitbench.models import LoadedModel
from traitbench.teacher.sampling import GenerationConfig, generate, length_sorted_batches


def sample_answers(lm: LoadedModel, texts: list[str], max_tokens: int, batch: int, seed: int) -> list[str]:
    """One answer per rendered prompt at temperature 1 (no top-p/top-k), in length-sorted seeded batches."""
    gen = GenerationConfig(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=max_tokens, batch_size=batch,
                           early_reject=False)
    out: list[str] = [""] * len(texts)
    for b, idxs in enumerate(length_sorted_batches(texts, batch)):
        for i, s in zip(idxs, generate(lm, [texts[i] for i in idxs], gen, seed=seed * 7919 + b * batch)):
            out[i] = s.text
    return out
