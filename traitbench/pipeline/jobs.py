"""The students of a run: one job per (model, kind, condition, seed), each its own cached stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from traitbench.artifacts import DatasetOut, StudentOut
from traitbench.cache import Stage, cached
from traitbench.config import format_validation_error
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import CONDITIONS, ExperimentConfig
from traitbench.io import read_jsonl, sha256_json
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.student.config import StudentConfig
from traitbench.student.kinds import KINDS
from traitbench.teacher.setup import teacher_setup


RELATIONS = ("same-init", "cross-init", "cross-family")


def relation(student: str, teacher: str) -> str:
    """How a student model relates to the teacher's: the same weights, the same family and vocabulary from
    another initialisation, or another family (the paper's theory predicts transfer only for the first)."""
    s, t = models.get_spec(student), models.get_spec(teacher)
    if s.name == t.name:
        return "same-init"
    return "cross-init" if s.family == t.family else "cross-family"


@dataclass(frozen=True)
class StudentJob:
    model: str
    variant: str  # "lora" (the default student) or a configured variant name
    condition: str  # trained on the trait teacher's or the control teacher's numbers
    seed: int
    overrides: dict
    relation: str  # see `relation`
    system: str | None  # the system text it is trained under (`StudentVariant.context`)

    @property
    def id(self) -> str:
        return f"{models.label(self.model)}/{self.variant}/{self.condition}/seed{self.seed}"

    @property
    def family_relation(self) -> str:
        return "cross-family" if self.relation == "cross-family" else "same-family"


def student_jobs(cfg: ExperimentConfig) -> list[StudentJob]:
    """Every student, grouped by model, kind and condition (consecutive students share a teacher's logits)."""
    kinds = [(m, "lora", {}, cfg.neutral_system) for m in cfg.students.models]
    kinds += [(m, v.name, v.train, v.system(cfg.neutral_system)) for v in cfg.students.variants
              for m in (v.models or [cfg.teacher.control])]
    jobs = []
    for m, name, ov, system in kinds:
        rel = relation(m, cfg.teacher.control)  # the teacher's base; unknown model: one-line error before any work
        for c in CONDITIONS:
            for seed in cfg.students.seeds:
                jobs.append(StudentJob(m, name, c, seed, {**cfg.students.train, **ov}, rel, system))
    for job in jobs:
        student_config(job)  # bad trainer keys fail now, before any sampling
    return jobs


def student_models(cfg: ExperimentConfig) -> list[str]:
    """Every model some student is trained from, in order of first appearance."""
    return list(dict.fromkeys(job.model for job in student_jobs(cfg)))


def student_config(job: StudentJob) -> StudentConfig:
    try:
        return StudentConfig.model_validate({**job.overrides, "seed": job.seed})
    except ValidationError as e:
        raise TraitbenchError(format_validation_error(e, f"students ({job.variant})")) from None


def teacher_args(cfg: ExperimentConfig, job: StudentJob) -> dict:
    """The teacher a distilled student matches (none for SFT students)."""
    if not KINDS[student_config(job).mode].needs_teacher:
        return {}
    setup = teacher_setup(cfg, job.condition)
    return {"teacher": setup.model, "teacher_adapter": setup.trait_path, "teacher_system": setup.system}


def job_stage(cfg: ExperimentConfig, job: StudentJob, dataset: DatasetOut, run_dir: Path) -> Stage:
    """The student's cached stage: keyed by its trainer settings, data, context, weights and teacher (not by the
    settings that leave the weights as they are: resume checkpoints and logging)."""
    key = {"job": job.id, "train": student_config(job).model_dump(exclude={"checkpoint_every", "report_to"}),
           "dataset": dataset.conditions[job.condition].content_hash, "system": job.system,
           "model_hashes": models.file_hashes(job.model)}
    teacher = teacher_args(cfg, job)
    if teacher:
        key["teacher"] = teacher
    if shares_control(cfg, job):  # one folder per key: runs whose controls differ never overwrite each other's
        return Stage(Path(cfg.students.shared_controls) / f"{job.id}-{sha256_json(key)[:12]}", key)
    return Stage(RunLayout(Path(run_dir)).student(job.id), key)


def shares_control(cfg: ExperimentConfig, job: StudentJob) -> bool:
    """Whether this student is a control kept in `students.shared_controls` (trained once for every run there)."""
    return job.condition == "control" and cfg.students.shared_controls is not None


def train_job(cfg: ExperimentConfig, job: StudentJob, dataset: DatasetOut, run_dir: Path) -> StudentOut:
    """Train one student unless its stage is cached; its outputs (folder, metrics, relation)."""
    scfg = student_config(job)
    teacher = teacher_args(cfg, job)

    def work(stage: Stage) -> StudentOut:
        rows = read_jsonl(dataset.conditions[job.condition].train, required=("prompt", "completion"))
        print(f"[student] {job.id} ({job.relation}, {scfg.mode}) on {len(rows)} rows")
        trait = None if shares_control(cfg, job) else cfg.trait.word  # a shared control belongs to no one trait
        metrics = KINDS[scfg.mode].train(job.model, rows, job.system, scfg, stage.dir / "out", **teacher,
                                         condition=job.condition, trait=trait)
        return StudentOut(stage.dir / "out", metrics, job.family_relation, job.relation)

    return cached(job_stage(cfg, job, dataset, run_dir), work, StudentOut)
