"""Load a teacher's weights with its trait: the model alone, plus a trait LoRA adapter, or plus a steering vector."""

from __future__ import annotations

from pathlib import Path

from traitbench import models
from traitbench.teacher.steering import FILE as STEERING_FILE
from traitbench.teacher.steering import Steering


def is_steering(trait_path: str | Path | None) -> bool:
    return trait_path is not None and Path(trait_path).name == STEERING_FILE


def load_trait_model(model: str, trait_path: str | Path | None, dtype: str = "auto", seed: int = 0
                     ) -> models.LoadedModel:
    """`model` with the trait at `trait_path`: a saved steering vector (hooked in for the model's lifetime),
    a PEFT adapter folder (merged), or nothing (None)."""
    if trait_path is None or is_steering(trait_path):
        lm = models.load(model, dtype=dtype, seed=seed)
        if trait_path is not None:
            Steering.load(trait_path).attach(lm.model)
        return lm
    from traitbench.student.train import load_student  # the student loader merges adapters

    return load_student(model, trait_path, dtype=dtype)
