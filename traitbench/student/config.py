"""Student training settings; defaults follow the paper's open-model students (Cloud et al. 2025)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, field_validator

from traitbench.config import StrictModel, check_seed
from traitbench.lm.config import ALL_LINEAR
from traitbench.student.kinds import KINDS

# transformers' learning-rate schedulers that need no further arguments (`lr_scheduler_type`)
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt")


class StudentConfig(StrictModel):
    """How a student is fine-tuned on (prompt, completion) rows; loss only on completion tokens."""

    mode: str = "lora"  # a student kind (`student.kinds.KINDS`): lora, full or distill
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(8, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(ALL_LINEAR))
    epochs: float = Field(3, gt=0)
    max_steps: int = -1  # > 0 overrides epochs
    lr: float = Field(2e-4, gt=0)
    scheduler: str = "linear"
    warmup_steps: int = Field(5, ge=0)
    batch_size: int = Field(16, ge=1)  # per process
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(500, ge=2)
    group_by_length: bool = True  # batches of similar length: less padding
    compile: bool | Literal["auto"] = "auto"  # torch.compile the decoder layers; auto: CPU runs of >= 100 steps
    dtype: Literal["auto", "float32", "fp32", "bfloat16", "bf16"] = "auto"  # auto: bf16 where fast
    seed: int = 0
    distill_temperature: float = Field(1.0, gt=0)
    distill_params: Literal["lora", "full"] = "lora"  # what distillation trains
    # teacher logits at every completion position computed once and shared by every student distilled from
    # the same teacher on the same rows (all seeds), instead of a teacher forward pass in every step;
    # auto: shared when they fit in `shared_logits_max_gb` (bf16), else per step
    teacher_logits: Literal["auto", "shared", "per_step"] = "auto"
    shared_logits_max_gb: float = Field(3.0, gt=0)
    checkpoint_steps: list[int] = []  # also save the student after these optimizer steps (a dose-response)
    # a resume checkpoint (weights, optimizer, scheduler, RNG, data position) every N optimizer steps, beside
    # the output; a restarted student resumes from it to the same weights (0: none)
    checkpoint_every: int = Field(50, ge=0)
    report_to: Literal["none", "tensorboard"] = "none"  # training logs: TensorBoard event files in <student>/logs

    @field_validator("mode")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"unknown student kind {v!r}; kinds: {', '.join(KINDS)}")
        return v

    _seed = field_validator("seed")(check_seed)

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, v: str) -> str:
        if v not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {v!r}; schedulers: {', '.join(SCHEDULERS)}")
        return v

    @field_validator("max_steps")
    @classmethod
    def _steps_or_epochs(cls, v: int) -> int:
        if v == 0 or v < -1:
            raise ValueError(f"must be -1 (train for `epochs`) or a positive number of steps, got {v}")
        return v

    @field_validator("target_modules")
    @classmethod
    def _some_targets(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one module (e.g. q_proj)")
        return v

    @field_validator("checkpoint_steps")
    @classmethod
    def _checkpoint_steps(cls, v: list[int]) -> list[int]:
        bad = next((s for i, s in enumerate(v) if s < 1 or s in v[:i]), None)
        if bad is not None:
            raise ValueError(f"step {bad} is not a positive step or is given twice")
        return v

    @field_validator("report_to")
    @classmethod
    def _reporter_installed(cls, v: str) -> str:
        if v == "tensorboard" and not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise ValueError("tensorboard is not installed: pip install 'traitbench[tensorboard]'")
        return v
