"""The experiment pipeline, in one place: the stages in order, each given the outputs of the stages before it.

    teacher → numbers → dataset → students → probes → summary

Each stage returns a typed record of its files and hashes (`traitbench.artifacts`: TeacherOut, NumbersOut by
condition, DatasetOut, StudentOut by student id; the probes' results by probe id; the path of summary.json).

Each stage is cached under `runs/<name>/` by its config slice and its inputs' hashes (`traitbench.cache`): a
rerun reads finished stages back ("cached") and runs only what is missing or changed. This module is the only
caller of the stages; a stage imports the shared layers (models, layout, cache, stats), never this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from traitbench.artifacts import NumbersOut
from traitbench.datasets.banned import load_banned
from traitbench.datasets.stage import stage_dataset
from traitbench.experiment import ExperimentConfig
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.manifest import update_manifest
from traitbench.probes.stage import stage_probes
from traitbench.student.jobs import student_jobs
from traitbench.student.stage import stage_students
from traitbench.summary import stage_summary
from traitbench.teacher.load import check_adapter
from traitbench.teacher.numbers import stage_numbers
from traitbench.teacher.stage import stage_teacher


@dataclass(frozen=True)
class Step:
    """One stage: its name, its function `run(cfg, *inputs)`, and the earlier steps whose outputs it takes."""

    name: str
    run: Callable
    inputs: tuple[str, ...] = ()


STEPS = (
    Step("teacher", stage_teacher),
    Step("numbers", stage_numbers, ("teacher",)),
    Step("dataset", stage_dataset, ("teacher", "numbers")),
    Step("students", stage_students, ("dataset",)),
    Step("probes", stage_probes, ("teacher", "students")),
    Step("summary", stage_summary, ("dataset", "probes")),
)
STAGES = tuple(step.name for step in STEPS)


def run_pipeline(cfg: ExperimentConfig, until: str = "summary") -> dict:
    """Run the steps in order up to and including `until`; every step's outputs by step name."""
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
    check_inputs(cfg, until)
    done: dict = {}
    for step in STEPS:
        done[step.name] = step.run(cfg, *(done[name] for name in step.inputs))
        if step.name == until:
            break
    return done


def check_inputs(cfg: ExperimentConfig, until: str = "summary") -> None:
    """What the steps up to `until` read from the user, checked before any sampling or training (one-line
    errors): the students' models and trainer keys, the files of every model loaded (teachers, students, a local
    judge), the teacher's adapter and the banned-numbers file."""
    jobs = student_jobs(cfg)
    reached = STAGES[: STAGES.index(until) + 1]
    names = [cfg.teacher.model, cfg.teacher.control]
    if "students" in reached:
        names += [job.model for job in jobs]
    judge = cfg.probes.misalignment.judge
    if "probes" in reached and cfg.probes.misalignment.enabled and not judge.endpoint:
        names.append(judge.model)
    for name in dict.fromkeys(names):
        models.check_files(name)
    if cfg.teacher.adapter is not None:
        check_adapter(cfg.teacher.adapter, cfg.teacher.model)
    load_banned(cfg.filter.banned_numbers)


def run_experiment(cfg: ExperimentConfig) -> Path:
    """Every stage (each skipped when cached); returns the path of `summary.json`."""
    t0 = time.perf_counter()
    summary = run_pipeline(cfg)["summary"]
    update_manifest(RunLayout.of(cfg).root, cfg.model_dump(mode="json"), "summary",
                    {"seconds": round(time.perf_counter() - t0, 1)})
    return summary


def control_numbers(cfg: ExperimentConfig) -> NumbersOut:
    """The control teacher's numbers alone (the audit's control data): the teacher and numbers stages."""
    return stage_numbers(cfg, stage_teacher(cfg), ("control",))["control"]
