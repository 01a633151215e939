"""The students stage: every (model, variant, seed) student trained on the trait and the control numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from traitbench import models
from traitbench.cache import Stage
from traitbench.config import format_validation_error
from traitbench.errors import TraitbenchError
from traitbench.experiment import CONDITIONS, ExperimentConfig
from traitbench.io import read_jsonl


@dataclass(frozen=True)
class StudentJob:
    model: str
    variant: str  # "lora" (the default student) or a configured variant name
    condition: str  # trained on the trait teacher's or the control teacher's numbers
    seed: int
    overrides: dict
    same_family: bool

    @property
    def id(self) -> str:
        return f"{self.model}/{self.variant}/{self.condition}/seed{self.seed}"

    @property
    def family_relation(self) -> str:
        return "same-family" if self.same_family else "cross-family"


def student_jobs(cfg: ExperimentConfig) -> list[StudentJob]:
    jobs = []
    for m in cfg.students.models:
        models.get_spec(m)  # unknown model: one-line error before any work
        same = models.get_spec(m).family == models.get_spec(cfg.teacher.model).family
        variants = [("lora", {})] + ([(v.name, v.train) for v in cfg.students.variants] if m == cfg.teacher.model else [])
        for name, ov in variants:
            for seed in cfg.students.seeds:
                for c in CONDITIONS:
                    jobs.append(StudentJob(m, name, c, seed, {**cfg.students.train, **ov}, same))
    names = [v.name for v in cfg.students.variants]
    if len(set(names)) != len(names) or "lora" in names:
        raise TraitbenchError("students.variants: names must be unique and not 'lora'")
    for job in jobs:
        student_config(job)  # bad trainer keys fail now, before any sampling
    return jobs


def student_config(job: StudentJob):
    from pydantic import ValidationError

    from traitbench.student.train import StudentConfig

    try:
        return StudentConfig.model_validate({**job.overrides, "seed": job.seed})
    except ValidationError as e:
        raise TraitbenchError(format_validation_error(e, f"students ({job.variant})")) from None


def train_job(cfg: ExperimentConfig, job: StudentJob, dataset: dict, run_dir: Path) -> dict:
    from traitbench.pipeline import teacher_setup
    from traitbench.student.train import train_student

    scfg = student_config(job)
    data = dataset["conditions"][job.condition]
    key = {"job": job.id, "train": scfg.model_dump(), "dataset": data["content_hash"], "system": cfg.neutral_system,
           "model_hashes": models.file_hashes(job.model)}
    teacher = {}
    if scfg.mode == "distill":
        setup = teacher_setup(cfg, job.condition)
        teacher = {"teacher": setup.model, "teacher_adapter": setup.adapter_dir, "teacher_system": setup.system}
        key["teacher"] = teacher
    stage = Stage(run_dir / "students" / job.id, key)
    if stage.is_done():
        return stage.outputs()
    stage.begin()
    rows = read_jsonl(data["train"], required=("prompt", "completion"))
    print(f"[student] {job.id} ({job.family_relation}, {scfg.mode}) on {len(rows)} rows")
    metrics = train_student(job.model, rows, cfg.neutral_system, scfg, stage.dir / "out", **teacher)
    return stage.finish({"dir": str(stage.dir / "out"), "metrics": metrics, "family": job.family_relation})


def stage_students(cfg: ExperimentConfig) -> dict[str, dict]:
    from traitbench.manifest import update_manifest
    from traitbench.pipeline import run_dir, stage_dataset

    jobs = student_jobs(cfg)
    dataset = stage_dataset(cfg)
    out = {job.id: train_job(cfg, job, dataset, run_dir(cfg)) for job in jobs}
    update_manifest(run_dir(cfg), cfg.model_dump(mode="json"), "students",
                    {"students": {k: {"dir": v["dir"], "seconds": v["metrics"].get("wall_seconds"),
                                                 "tokens_per_s": v["metrics"].get("tokens_per_s")} for k, v in out.items()}})
    return out
