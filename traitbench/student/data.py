"""Training examples: rendered exactly like sampling and probing, tokenized once, left-padded in batches.

Completions end every sequence, so after left padding they are right-aligned: the loss needs logits only for
the last `max completion length + 1` positions (`logits_to_keep`), which spares most of the vocabulary head.
"""

from __future__ import annotations

import torch

from traitbench.lm.batching import length_batches
from traitbench.lm.models import LoadedModel
from traitbench.lm.render import add_special_tokens, completion_suffix, render_prompt


def build_sft_rows(lm: LoadedModel, rows: list[dict], system: str | None) -> list[dict]:
    """TRL standard prompt-completion examples: our own rendering, never a trainer-applied chat template.

    Base models continue "Answer:" with a space before the (stripped) sampled answer, so it is put back.
    """
    lead = " " if lm.spec.kind == "base" else ""
    return [{"prompt": render_prompt(lm, system, r["prompt"]),
             "completion": lead + r["completion"] + completion_suffix(lm)} for r in rows]


def tokenize_sft_rows(lm: LoadedModel, sft_rows: list[dict], max_length: int) -> list[dict]:
    """`prompt_ids` / `completion_ids` per example, tokenized separately so the boundary is exact.

    Chat-rendered prompts already hold their special tokens (no BOS added); base-model prompts get the
    tokenizer's BOS; completions never get any. Sequences over `max_length` lose the end of the completion
    (possibly all of it: callers drop examples with empty `completion_ids`). Aligned with `sft_rows`.
    """
    tok = lm.tokenizer
    prompts = tok([r["prompt"] for r in sft_rows], add_special_tokens=add_special_tokens(lm))["input_ids"]
    completions = tok([r["completion"] for r in sft_rows], add_special_tokens=False)["input_ids"]
    out = []
    for p, c in zip(prompts, completions):
        c = c[: max(0, max_length - len(p))]
        out.append({"prompt_ids": p, "completion_ids": c, "length": len(p) + len(c)})
    return out


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids, attention_mask and position_ids (0 at each row's first real token) of left-padded rows."""
    width = max(map(len, seqs))
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


class LengthBucketSampler(torch.utils.data.Sampler[int]):
    """Batches of rows of similar length, in a fresh random order every epoch.

    Each epoch sorts the rows by length, breaking ties at random, cuts them into `batch_size` batches and
    shuffles the full ones; a short one stays last, as the loader cuts the stream every `batch_size` rows.
    transformers' LengthGroupedSampler sorts only within 4+ random megabatches: 5% padding in the default
    300-row datasets and 14% in the bench's 64 rows, against ~1% here. Batch order stays random (no length
    curriculum). Seeded: epoch k of one seed is always the same.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = list(lengths), batch_size, seed, 0

    def __len__(self) -> int:
        return len(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        tie = torch.rand(len(self.lengths), generator=g).tolist()
        batches = length_batches(self.lengths, self.batch_size, ties=tie)
        full = len(self.lengths) // self.batch_size
        self.epoch += 1  # a loader that never calls set_epoch still gets new ties and order next epoch
        for b in torch.randperm(full, generator=g).tolist() + list(range(full, len(batches))):
            yield from batches[b]


class CompletionCollator:
    """Left-pads prompt+completion; `labels` are -100 everywhere but completion tokens.

    With `teacher=True` the examples also carry `teacher_prompt_ids` (the teacher's own context before the
    same completion) and the batch gets `teacher_input_ids` / `teacher_attention_mask` / `teacher_position_ids`.
    Examples with an `index` (their row in shared teacher logits) give the batch `row_index`.
    """

    def __init__(self, pad_id: int, teacher: bool = False):
        self.pad_id = pad_id
        self.teacher = teacher

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        seqs = [e["prompt_ids"] + e["completion_ids"] for e in examples]
        ids, mask, pos = left_pad(seqs, self.pad_id)
        labels = torch.full_like(ids, -100)
        for i, e in enumerate(examples):
            n = len(e["completion_ids"])
            labels[i, -n:] = torch.tensor(e["completion_ids"])
        batch = {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels}
        if "index" in examples[0]:
            batch["row_index"] = torch.tensor([e["index"] for e in examples])
        if self.teacher:
            t_ids, t_mask, t_pos = left_pad([e["teacher_prompt_ids"] + e["completion_ids"] for e in examples],
                                            self.pad_id)
            batch.update(teacher_input_ids=t_ids, teacher_attention_mask=t_mask, teacher_position_ids=t_pos)
        return batch
