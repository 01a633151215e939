"""Which weights and which context each teacher condition (trait, control) samples with."""

from __future__ import annotations

from dataclasses import dataclass

from traitbench.lm import models
from traitbench.experiment import ExperimentConfig
from traitbench.layout import RunLayout
from traitbench.teacher.load import load_trait_model


@dataclass(frozen=True)
class TeacherSetup:
    """Which weights and which context a teacher condition samples with."""

    model: str
    adapter_dir: str | None
    system: str | None
    steering: str | None = None  # a saved steering vector (`teacher.steering`) hooked into the model

    @property
    def trait_path(self) -> str | None:
        """Where the trait's weights are (adapter folder or steering file): what `load_trait_model` takes."""
        return self.adapter_dir or self.steering

    def to_dict(self) -> dict:
        d = {"model": self.model, "adapter_dir": self.adapter_dir, "system": self.system}
        return d if self.steering is None else dict(d, steering=self.steering)


def teacher_setup(cfg: ExperimentConfig, condition: str) -> TeacherSetup:
    """The control teacher is `teacher.control` in the neutral context; the trait teacher states the trait in
    its system prompt, or carries it in its weights (trained or given adapter, steering vector, tuned model)."""
    t, run = cfg.teacher, RunLayout.of(cfg)
    if condition == "control":
        return TeacherSetup(t.control, None, cfg.neutral_system)
    if t.injection == "system_prompt":
        return TeacherSetup(t.model, None, cfg.trait.teacher_prompt())
    adapter = {"lora": str(run.teacher), "adapter": t.adapter}.get(t.injection)
    steering = str(run.steering) if t.injection == "steering" else None
    return TeacherSetup(t.model, adapter, cfg.neutral_system, steering)


def load_teacher(cfg: ExperimentConfig, condition: str, dtype: str = "auto") -> models.LoadedModel:
    setup = teacher_setup(cfg, condition)
    return load_trait_model(setup.model, setup.trait_path, dtype, seed=cfg.seed)
