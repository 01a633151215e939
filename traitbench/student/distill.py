"""Losses at completion positions: next-token cross-entropy and logit distillation KL(teacher ‖ student)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from traitbench.errors import TraitbenchError
from traitbench.lm.models import LoadedModel, head_rows
from traitbench.student.data import left_pad


def completion_window(labels: torch.Tensor) -> int:
    """How many trailing logits the loss needs: from the position before the first completion token on.

    Completions are right-aligned (left padding), so every target lies in the last `window - 1` positions.
    """
    cols = (labels != -100).any(0).nonzero()
    if len(cols) == 0:
        return 1
    return labels.shape[1] - int(cols[0]) + 1


def completion_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
                  ) -> torch.Tensor:
    """Summed KL(teacher ‖ student) over rows of [N, V] logits at temperature τ, scaled by τ² (Hinton et al.)."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="sum") * temperature**2


class ChunkedKL(torch.autograd.Function):
    """`completion_kl` a few rows at a time in fp32, the gradient τ·(softmax(s/τ) − softmax(t/τ)) in the student
    logits' dtype: no full-size fp32 copies of either distribution (with Qwen's 152k vocabulary the plain version
    held ~2.5 GB of them per batch of 16)."""

    ROWS = 32

    @staticmethod
    def forward(ctx, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        total = student.new_zeros((), dtype=torch.float)
        for s, t in zip(student.split(ChunkedKL.ROWS), teacher.split(ChunkedKL.ROWS)):
            ls, lt = F.log_softmax(s.float() / temperature, -1), F.log_softmax(t.float() / temperature, -1)
            total += (lt.exp() * (lt - ls)).sum()
        ctx.save_for_backward(student, teacher)
        ctx.temperature = temperature
        return total * temperature**2

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        student, teacher = ctx.saved_tensors
        tau = ctx.temperature
        out = torch.empty_like(student)
        for i in range(0, len(student), ChunkedKL.ROWS):
            rows = slice(i, i + ChunkedKL.ROWS)
            q = F.softmax(student[rows].float() / tau, -1)
            q -= F.softmax(teacher[rows].float() / tau, -1)
            out[rows] = q.mul_(grad * tau)
        return out, None, None


def completion_logits(model, inputs: dict, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [n, V] at the n positions that predict a completion token, and those n targets.

    The model runs with `logits_to_keep` = the completion window and its head sees only the n positions
    (`models.head_rows`): no vocabulary-sized work for prompts or padding, in the forward or the backward.
    `inputs` may have another prompt width than `labels` (a teacher's own context): completions are
    right-aligned in both.
    """
    window = completion_window(labels)
    following = labels[:, labels.shape[1] - window + 1:]
    rows = F.pad(following != -100, (0, 1))  # the last position predicts nothing here
    with head_rows(model, rows):
        logits = model(**inputs, use_cache=False, logits_to_keep=window).logits
    return logits, following[following != -100]


def completion_loss(logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None,
                    temperature: float = 1.0) -> torch.Tensor:
    """Summed loss over the [n, V] completion logits: cross-entropy on `targets`, or KL to the teacher's."""
    if teacher_logits is None:
        return ChunkedCrossEntropy.apply(logits, targets)
    return ChunkedKL.apply(logits, teacher_logits.detach(), temperature)


class ChunkedCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of [n, V] logits, in fp32 a few rows at a time; the gradient in the logits' dtype.

    Equal to `F.cross_entropy(logits.float(), targets, reduction="sum")` without its full-size fp32 copies of
    the logits, log-probabilities and gradient: with gemma's 262k vocabulary the plain version's backward alone
    took 0.84 s of a 5 s LoRA step on this CPU.
    """

    ROWS = 32

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        lse = torch.cat([torch.logsumexp(c.float(), -1) for c in logits.split(ChunkedCrossEntropy.ROWS)]) \
            if len(logits) else logits.new_zeros(0, dtype=torch.float)
        ctx.save_for_backward(logits, targets, lse)
        return (lse - logits.gather(1, targets[:, None])[:, 0].float()).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, targets, lse = ctx.saved_tensors
        out = torch.empty_like(logits)
        for i in range(0, len(logits), ChunkedCrossEntropy.ROWS):
            rows = slice(i, i + ChunkedCrossEntropy.ROWS)
            p = (logits[rows].float() - lse[rows, None]).exp_()
            p[torch.arange(len(p)), targets[rows]] -= 1
            out[rows] = p.mul_(grad)
        return out, None


def check_same_vocabulary(student: LoadedModel, teacher: LoadedModel) -> None:
    """Logit distillation compares distributions token by token: both must share tokenizer and head size."""
    same_head = student.model.config.get_text_config().vocab_size == teacher.model.config.get_text_config().vocab_size
    if not same_head or student.tokenizer.get_vocab() != teacher.tokenizer.get_vocab():
        raise TraitbenchError(f"distillation needs a teacher with the student's vocabulary: {teacher.spec.name} "
                              f"and {student.spec.name} differ")


class TeacherLogits:
    """A teacher's logits at every example's completion positions: one [n_i, V] tensor per example.

    Computed once and shared by every student distilled from that teacher on the same rows (all seeds),
    instead of a teacher forward pass in every training step. `batch` returns a batch's rows in the order
    `completion_logits` returns the student's: row by row, completion positions ascending.
    """

    def __init__(self, rows: list[torch.Tensor]):
        self.rows = rows

    @property
    def nbytes(self) -> int:
        return sum(r.numel() * r.element_size() for r in self.rows)

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.rows[i] for i in index.tolist()])

    @staticmethod
    def estimate_bytes(examples: list[dict], vocab_size: int, dtype: torch.dtype) -> int:
        return sum(len(e["completion_ids"]) for e in examples) * vocab_size * torch.finfo(dtype).bits // 8

    @classmethod
    @torch.inference_mode()
    def compute(cls, teacher: torch.nn.Module, examples: list[dict], pad_id: int, batch_size: int = 16
                ) -> TeacherLogits:
        """Run `teacher` over `teacher_prompt_ids + completion_ids` of every example, in length-sorted batches."""
        device = next(teacher.parameters()).device
        order = sorted(range(len(examples)),
                       key=lambda i: len(examples[i]["teacher_prompt_ids"]) + len(examples[i]["completion_ids"]))
        rows: list[torch.Tensor] = [torch.empty(0)] * len(examples)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask, pos = left_pad([examples[i]["teacher_prompt_ids"] + examples[i]["completion_ids"] for i in idx],
                                      pad_id)
            labels = torch.full_like(ids, -100)
            for r, i in enumerate(idx):
                c = examples[i]["completion_ids"]
                labels[r, ids.shape[1] - len(c):] = torch.tensor(c)
            inputs = {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": pos.to(device)}
            logits, _ = completion_logits(teacher, inputs, labels.to(device))
            for i, chunk in zip(idx, logits.split([len(examples[i]["completion_ids"]) for i in idx])):
                rows[i] = chunk.clone()
        return cls(rows)
