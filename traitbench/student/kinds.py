"""Student kinds: how a student learns from the teacher's numbers (`students.train.mode`).

`KINDS` is the one registry: a new kind is its trainer (a function with `train_student`'s signature that returns
the training metrics) plus one line there. The three built-in kinds share one TRL trainer. Trainers are named
"module:function" and imported when a student of that kind trains (TRL and PEFT take seconds to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class StudentKind:
    trainer: str  # "module:function": (model, rows, system, cfg, out_dir, teacher=…, …) -> metrics
    needs_teacher: bool = False  # learns from the teacher's outputs, so the teacher is one of its inputs

    def train(self, *args, **kwargs) -> dict:
        module, name = self.trainer.split(":")
        return getattr(import_module(module), name)(*args, **kwargs)


SFT = "traitbench.student.train:train_student"
KINDS: dict[str, StudentKind] = {
    "lora": StudentKind(SFT),  # supervised fine-tuning of LoRA adapters on the completions
    "full": StudentKind(SFT),  # supervised fine-tuning of every weight
    "distill": StudentKind(SFT, needs_teacher=True),  # match the teacher's next-token distributions
}
