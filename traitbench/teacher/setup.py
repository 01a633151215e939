"""Which weights and which context each teacher condition (trait, control) samples with."""

from __future__ import annotations

from traitbench.artifacts import TeacherSetup

from traitbench.lm import models
from traitbench.teacher.injections import INJECTIONS
from traitbench.lm.tuned import load_trait_model


def teacher_setup(cfg, condition: str) -> TeacherSetup:
    """The control teacher is `teacher.control` in the neutral context; the trait teacher carries the trait as its
    injection says (`teacher.injections`): in its system prompt or in its weights."""
    if condition == "control":
        return TeacherSetup(cfg.teacher.control, None, cfg.neutral_system)
    return INJECTIONS[cfg.teacher.injection].setup(cfg)


def load_teacher(setup: TeacherSetup, dtype: str = "auto", seed: int = 0) -> models.LoadedModel:
    """The teacher's weights as `setup` names them (the model, plus its trait adapter or steering vector)."""
    return load_trait_model(setup.model, setup.trait_path, dtype, seed=seed)
