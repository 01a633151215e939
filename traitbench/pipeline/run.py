"""The experiment pipeline, in one place: the stages in order, each given the outputs of the stages before it.

    teacher → numbers → dataset → students → probes → summary

Each stage returns a typed record of its files and hashes (`traitbench.artifacts`: TeacherOut, NumbersOut by
condition, DatasetOut, StudentOut by student id; the probes' results by probe id; the path of summary.json).

Each stage is cached under `runs/<name>/` by its config slice and its inputs' hashes (`traitbench.cache`): a
rerun reads finished stages back ("cached") and runs only what is missing or changed. This module is the only
caller of the stages; a stage imports the shared layers (models, layout, cache, stats), never this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from traitbench.artifacts import NumbersOut, Result
from traitbench.datasets.banned import load_banned
from traitbench.datasets.hub import check_can_push, push_dataset
from traitbench.errors import TraitbenchError
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.pipeline.config import ExperimentConfig
from traitbench.pipeline.dataset import stage_dataset
from traitbench.pipeline.jobs import student_jobs
from traitbench.pipeline.numbers import stage_numbers
from traitbench.pipeline.probes import stage_probes
from traitbench.pipeline.students import stage_students
from traitbench.pipeline.summary import stage_summary
from traitbench.pipeline.teacher import stage_teacher
from traitbench.teacher.adapter import check_adapter
from traitbench.teacher.injections import INJECTIONS


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


def draws_refusal(injection: str) -> str | None:
    """Why a draw per seed cannot be made with this teacher injection, or None: the teacher stage would make a
    trained or fitted teacher again, differently, for every draw."""
    if INJECTIONS[injection].prepare is None:
        return None
    return (f"data_draws: per_seed needs a teacher the run does not train or fit; teacher.injection {injection!r} "
            "is (it would be made again, differently, for every draw)")


def draw_configs(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    """One run per student seed s, on a draw of the teacher's numbers of its own: prompts, sampling and subsample
    seeded with `cfg.seed + s` (seed 0's draw is the one-draw run's), its students of seed s only, under
    `<run>/draws/seed<s>`. Only for teachers the teacher stage makes nothing for (`draws_refusal`)."""
    refusal = draws_refusal(cfg.teacher.injection)
    if refusal:
        raise TraitbenchError(refusal)
    root = RunLayout.of(cfg).root
    out = []
    for s in cfg.students.seeds:
        data = cfg.model_dump()
        data.update(seed=cfg.seed + s, runs_dir=str(root / "draws"), name=f"seed{s}")
        data["students"]["seeds"] = [s]
        out.append(ExperimentConfig.model_validate(data))
    return out


def probes_per_seed_draw(cfg: ExperimentConfig) -> dict[str, dict]:
    """The stages up to the probes for every draw of `draw_configs`; every draw's probes by probe id (the models
    no seed trains, such as the base and the teacher, from the first draw). A test across these seeds covers the
    draw of the data, which the seeds of one draw do not."""
    probes: dict[str, dict] = {}
    for sub in draw_configs(cfg):
        for pid, res in run_pipeline(sub, "probes")["probes"].items():
            probes.setdefault(pid, res)
    return probes


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
    return run_pipeline(cfg)["summary"]


def control_numbers(cfg: ExperimentConfig) -> NumbersOut:
    """The control teacher's numbers alone (the audit's control data): the teacher and numbers stages."""
    return stage_numbers(cfg, stage_teacher(cfg), ("control",))["control"]


# ---------------------------------------------------------------- the commands (`traitbench.experiments.registry`)
def run(cfg: ExperimentConfig, out: Path) -> Result:
    """`traitbench experiment`: every stage, then the summary (printed)."""
    summary = run_experiment(cfg)
    return Result(out, summary.with_suffix(".md").read_text(), [summary])


def run_teacher(cfg: ExperimentConfig, out: Path) -> Result:
    return Result(out, json.dumps(run_pipeline(cfg, "teacher")["teacher"].to_dict(), indent=2))


def run_numbers(cfg: ExperimentConfig, out: Path) -> Result:
    return Result(out, "\n".join(f"[numbers:{c}] {n.rows} rows in {n.raw} ({n.throughput})"
                                 for c, n in run_pipeline(cfg, "numbers")["numbers"].items()))


def run_filter(cfg: ExperimentConfig, out: Path, push_to_hub: str | None = None, push_condition: str = "trait",
               private: bool = False) -> Result:
    """The run's dataset stage; `push_to_hub`: then one condition's Hub dataset uploaded to that repo."""
    if push_to_hub:
        check_can_push(push_to_hub)  # offline or no credentials: fail before loading or sampling anything
    data = run_pipeline(cfg, "dataset")["dataset"]
    text = f"[dataset] {data.n_rows} rows per condition: " + ", ".join(
        f"{c}: {v.hf}" for c, v in data.conditions.items())
    if push_to_hub:
        url = push_dataset(data.conditions[push_condition].hf, push_to_hub, private=private)
        text += f"\n[dataset] pushed the {push_condition} dataset to {push_to_hub}: {url}"
    return Result(out, text)


def run_students(cfg: ExperimentConfig, out: Path) -> Result:
    return Result(out, "\n".join(f"[student] {sid}: final loss {s.metrics.get('final_loss')}"
                                 for sid, s in run_pipeline(cfg, "students")["students"].items()))


def run_probes(cfg: ExperimentConfig, out: Path) -> Result:
    probes = run_pipeline(cfg, "probes")["probes"]
    return Result(out, f"[probe] {len(probes)} probes: {', '.join(sorted(probes))}")
