"""Model settings the configs share: dtypes, LoRA targets, sampling (no torch here: configs import this)."""

from __future__ import annotations

from pydantic import Field

from traitbench.config import StrictModel

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # LoRA targets
DTYPES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")  # what `models.resolve_dtype` takes


def known_dtype(v: str) -> str:
    """A dtype name `models.resolve_dtype` knows (a validator for the configs' `dtype` keys)."""
    if v not in DTYPES:
        raise ValueError(f"unknown dtype {v!r}; dtypes: {', '.join(DTYPES)}")
    return v


class GenerationConfig(StrictModel):
    """Explicit sampling settings (GGUF-built generation configs carry none)."""

    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)  # 0 = off
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(64, ge=1)
    early_reject: bool = True  # stop a row as soon as its text can no longer pass the filter
