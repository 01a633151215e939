"""The teacher stage: the trait teacher made ready as its injection says (`teacher.injections`: system prompt
stated, LoRA trained, steering vector computed, a given adapter checked and hashed), cached under `teacher/`."""

from __future__ import annotations

import time

from traitbench.artifacts import TeacherOut
from traitbench.cache import Stage, cached
from traitbench.pipeline.config import CONDITIONS, ExperimentConfig
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.teacher.injections import INJECTIONS
from traitbench.teacher.setup import teacher_setup


def teacher_key(cfg: ExperimentConfig) -> tuple[dict, dict]:
    """The teacher stage's cache key, and what the injection's check of given weights recorded (in the key too)."""
    injection = INJECTIONS[cfg.teacher.injection]
    key = {"teacher": cfg.teacher.key(), "trait": cfg.trait.key(), "system": cfg.neutral_system,
           "seed": cfg.seed, "model_hashes": models.file_hashes(cfg.teacher.model)}
    made = {cfg.teacher.injection: injection.check(cfg)} if injection.check else {}
    return dict(key, **made), made


def stage_teacher(cfg: ExperimentConfig) -> TeacherOut:
    """Given weights (an adapter) are checked and hashed before any work; weights the injection makes (a LoRA
    adapter, a steering vector) are made here; a system-prompt injection needs nothing."""
    injection = INJECTIONS[cfg.teacher.injection]
    models.get_spec(cfg.teacher.control)  # an unknown control model: one-line error now
    key, made = teacher_key(cfg)
    run = RunLayout.of(cfg)

    def work(stage: Stage) -> TeacherOut:
        t0 = time.perf_counter()
        if injection.prepare:
            made[cfg.teacher.injection] = injection.prepare(cfg, stage.dir)
        return TeacherOut({c: teacher_setup(cfg, c) for c in CONDITIONS}, made, round(time.perf_counter() - t0, 1))

    return cached(Stage(run.teacher, key), work, TeacherOut, label="teacher",
                  manifest=(run.root, cfg.model_dump(mode="json")),
                  record=lambda out: {"model_hashes": key["model_hashes"], **out.to_dict()})
