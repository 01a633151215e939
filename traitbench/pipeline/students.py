"""The students stage: every (model, variant, seed) student trained on the trait and the control numbers."""

from __future__ import annotations

import time

from traitbench.artifacts import DatasetOut, StudentOut
from traitbench.pipeline.config import ExperimentConfig
from traitbench.layout import RunLayout
from traitbench.manifest import update_manifest
from traitbench.pipeline.jobs import job_stage, student_jobs, train_job
from traitbench.pipeline.workers import train_in_parallel, train_on_ray


def stage_students(cfg: ExperimentConfig, dataset: DatasetOut) -> dict[str, StudentOut]:
    """The students stage: every student trained on its condition's rows of `dataset` (the dataset stage's
    outputs) unless cached, `students.workers` at a time; their outputs by student id."""
    jobs = student_jobs(cfg)
    root = RunLayout.of(cfg).root
    t0 = time.perf_counter()
    todo = [job for job in jobs if not job_stage(cfg, job, dataset, root).is_done()]
    if cfg.students.backend == "ray" and todo:
        train_on_ray(cfg, todo, dataset, root)
    elif cfg.students.workers > 1 and len(todo) > 1:
        train_in_parallel(cfg, todo, dataset, root, cfg.students.workers, cfg.students.threads_per_worker)
    out = {job.id: train_job(cfg, job, dataset, root) for job in jobs}
    update_manifest(root, cfg.model_dump(mode="json"), "students", {
        "seconds": round(time.perf_counter() - t0, 1), "workers": cfg.students.workers,
        "backend": cfg.students.backend,
        "students": {k: {"dir": str(v.dir), "seconds": v.metrics.get("wall_seconds"),
                         "tokens_per_s": v.metrics.get("tokens_per_s"),
                         "resumed_from_step": v.metrics.get("resumed_from_step"),
                         "report_to": v.metrics.get("report_to", "none"), "logs": v.metrics.get("logs")}
                     for k, v in out.items()}})
    return out
