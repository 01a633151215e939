"""The probes stage: base models, the teacher and every student, each probed once and cached."""

from __future__ import annotations

import time
from pathlib import Path

from traitbench.artifacts import StudentOut, TeacherOut
from traitbench.cache import Stage, cached
from traitbench.pipeline.config import ExperimentConfig
from traitbench.io import sha256_file, sha256_json
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.manifest import update_manifest
from traitbench.probes.config import ProbeConfig
from traitbench.probes.judge import judge_identity, load_judge
from traitbench.probes.run import probe_logprob, probe_model
from traitbench.student.card import add_probe_results
from traitbench.pipeline.jobs import StudentJob, student_jobs, student_models
from traitbench.lm.tuned import StudentLoader
from traitbench.teacher.injections import INJECTIONS
from traitbench.teacher.setup import load_teacher


def probe_context(cfg: ExperimentConfig) -> str | None:
    """The system text students are probed with: the training context unless configured otherwise."""
    c = cfg.probes.context
    return cfg.neutral_system if c == "train" else (None if c == "none" else c)


def probe_key(p: ProbeConfig) -> dict:
    """The probe config slice of a stage key: the misalignment block (with the judge's weights), the contrastive
    block (with the triples' hash) and the other words only when set, so runs without them keep their cache."""
    m = p.misalignment
    key = p.model_dump(exclude={"misalignment", "contrastive"} | (set() if p.other_words else {"other_words"}))
    if p.contrastive.enabled:
        key["contrastive"] = dict(p.contrastive.model_dump(exclude={"triples"}), triples=sha256_file(p.contrastive.file()))
    return dict(key, misalignment=dict(m.model_dump(), judge=judge_identity(m.judge))) if m.enabled else key


class SharedJudge:
    """Loads the configured judge on first use and hands the same one to every probed model."""

    def __init__(self, p: ProbeConfig):
        self.cfg, self.judge = p.misalignment, None

    def __call__(self):
        if self.cfg.enabled and self.judge is None:
            self.judge = load_judge(self.cfg.judge)
        return self.judge


def probe_stage(cfg: ExperimentConfig, run_dir: Path, pid: str, info: dict) -> Stage:
    """The cached stage of one probed model, keyed by the probe settings, the trait, the seed and `info`."""
    key = {"probe": probe_key(cfg.probes), "trait": cfg.trait.key(), "seed": cfg.seed, **info}
    return Stage(RunLayout(run_dir).probe(pid), key)


def probe_cached(cfg: ExperimentConfig, run_dir: Path, pid: str, info: dict, loader, judge=None,
           logprob_only: bool = False) -> dict:
    """Probe one model unless cached; `judge` (a SharedJudge) supplies the misalignment judge.
    `logprob_only`: only log P(trait) per question (`probe_logprob`), e.g. for training checkpoints."""
    def work(stage: Stage) -> dict:
        print(f"[probe] {pid}")
        lm = loader()
        if logprob_only:
            res = probe_logprob(lm, info["system"], cfg.trait.word, cfg.trait.category, cfg.probes, stage.dir,
                                seed=cfg.seed)
            return dict(res, **info)
        res = probe_model(lm, info["system"], cfg.trait.word, cfg.trait.category, cfg.probes, stage.dir,
                          seed=cfg.seed, judge=judge() if judge else None, aliases=cfg.trait.aliases)
        extra = {"misalignment_samples": str(stage.dir / "misalignment.jsonl")} if "misalignment" in res else {}
        return dict(res, **info, samples=str(stage.dir / "samples.jsonl"), **extra)

    return cached(probe_stage(cfg, run_dir, pid, info), work)


def base_infos(cfg: ExperimentConfig) -> list[tuple[str, str, dict]]:
    """(probe id, model, info) of every base model probed: the teacher's, the control's and each student's."""
    return [(f"base/{models.label(m)}", m, {"kind": "base", "model": m, "system": probe_context(cfg),
                                            "weights": sha256_json(models.file_hashes(m))})
            for m in dict.fromkeys([cfg.teacher.model, cfg.teacher.control, *student_models(cfg)])]


def teacher_info(cfg: ExperimentConfig, teacher: TeacherOut) -> dict:
    """The trait teacher's probe info (in its own context, with the identity of its trait weights)."""
    setup = teacher.conditions["trait"]
    return {"kind": "teacher", "model": setup.model, "system": setup.system, "adapter": setup.trait_path,
            **INJECTIONS[cfg.teacher.injection].probe_key(cfg, teacher.made)}


def student_probes(cfg: ExperimentConfig, job: StudentJob, st: StudentOut) -> list[tuple[str, dict, Path]]:
    """(probe id, info, weights folder) of a student and of each of its training checkpoints."""
    info = {"kind": "student", "model": job.model, "variant": job.variant, "condition": job.condition,
            "seed": job.seed, "family": job.family_relation, "relation": job.relation, "system": probe_context(cfg),
            "student_dir": str(st.dir), "final_loss": st.metrics.get("final_loss"), "steps": st.metrics.get("steps")}
    out = [(job.id, info, st.dir)]
    for step in st.metrics.get("checkpoints") or []:
        d = st.dir / "checkpoints" / f"step-{step}"
        out.append((f"{job.id}/step-{step}", dict(info, kind="checkpoint", student_dir=str(d), steps=step,
                                                 final_loss=None), d))
    return out


def probe_student(cfg: ExperimentConfig, run_dir: Path, job: StudentJob, st: StudentOut, load_student, judge
                  ) -> dict[str, dict]:
    """A student (and its checkpoints: log P only) probed unless cached; results by probe id."""
    return {pid: probe_cached(cfg, run_dir, pid, info, lambda d=d: load_student(job.model, d),
                              judge if info["kind"] == "student" else None, logprob_only=info["kind"] == "checkpoint")
            for pid, info, d in student_probes(cfg, job, st)}


def _probe_group(cfg_data: dict, run_dir: str, students: dict[str, StudentOut], ids: list[str]) -> int:
    """Probe a group of students (one model, kind and condition) in this process: a Ray task."""
    cfg = ExperimentConfig.model_validate(cfg_data)
    jobs = {job.id: job for job in student_jobs(cfg)}
    loader, judge = StudentLoader(cfg.probes.dtype), SharedJudge(cfg.probes)
    for job_id in ids:
        probe_student(cfg, Path(run_dir), jobs[job_id], students[job_id], loader, judge)
    return len(ids)


def probe_on_ray(cfg: ExperimentConfig, run_dir: Path, students: dict[str, StudentOut]) -> None:
    """The students' probes not yet cached, as Ray tasks (one per model, kind and condition)."""
    import torch  # heavy: only where Ray runs

    from traitbench.ray_tasks import run_on_ray  # imports Ray (optional) only when it runs
    from traitbench.pipeline.workers import groups_of, model_cost  # heavy (the trainer): only where Ray runs

    run_dir = Path(run_dir).resolve()
    jobs = student_jobs(cfg)
    stages = {job.id: [probe_stage(cfg, run_dir, pid, info)
                       for pid, info, _ in student_probes(cfg, job, students[job.id])] for job in jobs}
    todo = [job for job in jobs if not all(s.is_done() for s in stages[job.id])]
    if not todo:
        return
    groups = groups_of(todo, model_cost)
    tasks = [(cfg.model_dump(mode="json"), str(run_dir), {j.id: students[j.id] for j in g}, [j.id for j in g])
             for g in groups]
    run_on_ray(cfg.students.ray, _probe_group, tasks,
               undone=lambda i: next((j.id for j in groups[i] if not all(s.is_done() for s in stages[j.id])), None),
               n_jobs=len(todo), done=lambda: sum(all(s.is_done() for s in stages[j.id]) for j in todo),
               log_dir=RunLayout(run_dir).probes / ".ray", desc="probes", threads=torch.get_num_threads())


def stage_probes(cfg: ExperimentConfig, teacher: TeacherOut, students: dict[str, StudentOut]) -> dict[str, dict]:
    """The probes stage: the base models, the trait teacher (`teacher`: the teacher stage's outputs) and every
    student (`students`: the students stage's), each probed unless cached; results by probe id."""
    rd = RunLayout.of(cfg).root
    t0 = time.perf_counter()
    dtype = cfg.probes.dtype
    judge = SharedJudge(cfg.probes)  # loaded once, at the first model actually probed
    load_student = StudentLoader(dtype)  # each student's adapter merged into a base loaded once per model
    out: dict[str, dict] = {}
    for pid, m, info in base_infos(cfg):
        out[pid] = probe_cached(cfg, rd, pid, info, lambda m=m: models.load(m, dtype=dtype, seed=cfg.seed), judge)
    setup = teacher.conditions["trait"]
    out["teacher"] = probe_cached(cfg, rd, "teacher", teacher_info(cfg, teacher),
                                  lambda: load_teacher(setup, dtype, cfg.seed), judge)
    if cfg.students.backend == "ray":
        probe_on_ray(cfg, rd, students)
    for job in student_jobs(cfg):
        out.update(probe_student(cfg, rd, job, students[job.id], load_student, judge))
        add_probe_results(students[job.id].dir, out[job.id])  # into the student's model card
    update_manifest(rd, cfg.model_dump(mode="json"), "probes",
                    {"probed": sorted(out), "seconds": round(time.perf_counter() - t0, 1)})
    return out
