"""Student stage: fine-tune a model on teacher-written numbers (LoRA, full, or logit distillation).

`StudentConfig` imports cheaply; the rest (torch, TRL, PEFT) loads on first use.
"""

from importlib import import_module

from traitbench.student.config import StudentConfig

__all__ = ["StudentConfig", "build_sft_rows", "load_student", "train_student"]

_LAZY = {"build_sft_rows": "data", "train_student": "train", "load_student": "load"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"traitbench.student.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
