"""The probes stage: base models, the teacher and every student, each probed once and cached."""

from __future__ import annotations

import time
from pathlib import Path

from traitbench.artifacts import StudentOut, TeacherOut
from traitbench.cache import Stage
from traitbench.experiment import ExperimentConfig
from traitbench.io import sha256_json
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.manifest import update_manifest
from traitbench.probes.config import ProbeConfig
from traitbench.probes.judge import judge_identity, load_judge
from traitbench.probes.run import probe_logprob, probe_model
from traitbench.student.card import add_probe_results
from traitbench.student.jobs import student_jobs, student_models
from traitbench.student.load import StudentLoader
from traitbench.teacher.injections import INJECTIONS
from traitbench.teacher.setup import load_teacher


def probe_context(cfg: ExperimentConfig) -> str | None:
    """The system text students are probed with: the training context unless configured otherwise."""
    c = cfg.probes.context
    return cfg.neutral_system if c == "train" else (None if c == "none" else c)


def probe_key(p: ProbeConfig) -> dict:
    """The probe config slice of a stage key: the misalignment block (with the judge's weights) and the other
    words only when set, so runs without them keep their cache."""
    m = p.misalignment
    key = p.model_dump(exclude={"misalignment"} | (set() if p.other_words else {"other_words"}))
    return dict(key, misalignment=dict(m.model_dump(), judge=judge_identity(m.judge))) if m.enabled else key


class SharedJudge:
    """Loads the configured judge on first use and hands the same one to every probed model."""

    def __init__(self, p: ProbeConfig):
        self.cfg, self.judge = p.misalignment, None

    def __call__(self):
        if self.cfg.enabled and self.judge is None:
            self.judge = load_judge(self.cfg.judge)
        return self.judge


def probe_cached(cfg: ExperimentConfig, run_dir: Path, pid: str, info: dict, loader, judge=None,
           logprob_only: bool = False) -> dict:
    """Probe one model unless cached; `judge` (a SharedJudge) supplies the misalignment judge.
    `logprob_only`: only log P(trait) per question (`probe_logprob`), e.g. for training checkpoints."""
    key = {"probe": probe_key(cfg.probes), "trait": cfg.trait.key(), "seed": cfg.seed, **info}
    stage = Stage(RunLayout(run_dir).probe(pid), key)
    if stage.is_done():
        return stage.outputs()
    stage.begin()
    print(f"[probe] {pid}")
    lm = loader()
    if logprob_only:
        res = probe_logprob(lm, info["system"], cfg.trait.word, cfg.trait.category, cfg.probes, stage.dir,
                            seed=cfg.seed)
        return stage.finish(dict(res, **info))
    res = probe_model(lm, info["system"], cfg.trait.word, cfg.trait.category, cfg.probes, stage.dir, seed=cfg.seed,
                      judge=judge() if judge else None, aliases=cfg.trait.aliases)
    extra = {"misalignment_samples": str(stage.dir / "misalignment.jsonl")} if "misalignment" in res else {}
    return stage.finish(dict(res, **info, samples=str(stage.dir / "samples.jsonl"), **extra))


def stage_probes(cfg: ExperimentConfig, teacher: TeacherOut, students: dict[str, StudentOut]) -> dict[str, dict]:
    """The probes stage: the base models, the trait teacher (`teacher`: the teacher stage's outputs) and every
    student (`students`: the students stage's), each probed unless cached; results by probe id."""
    rd = RunLayout.of(cfg).root
    t0 = time.perf_counter()
    system = probe_context(cfg)
    dtype = cfg.probes.dtype
    judge = SharedJudge(cfg.probes)  # loaded once, at the first model actually probed
    load_student = StudentLoader(dtype)  # each student's adapter merged into a base loaded once per model
    out: dict[str, dict] = {}
    for m in dict.fromkeys([cfg.teacher.model, cfg.teacher.control, *student_models(cfg)]):
        pid = f"base/{models.label(m)}"
        out[pid] = probe_cached(cfg, rd, pid, {"kind": "base", "model": m, "system": system,
                                  "weights": sha256_json(models.file_hashes(m))},
                                  lambda m=m: models.load(m, dtype=dtype, seed=cfg.seed), judge)
    setup = teacher.conditions["trait"]
    weights = INJECTIONS[cfg.teacher.injection].probe_key(cfg, teacher.made)
    out["teacher"] = probe_cached(cfg, rd, "teacher", {"kind": "teacher", "model": setup.model, "system": setup.system,
                            "adapter": setup.trait_path, **weights}, lambda: load_teacher(setup, dtype, cfg.seed), judge)
    for job in student_jobs(cfg):
        st = students[job.id]
        info = {"kind": "student", "model": job.model, "variant": job.variant, "condition": job.condition,
                "seed": job.seed, "family": job.family_relation, "relation": job.relation, "system": system,
                "student_dir": str(st.dir), "final_loss": st.metrics.get("final_loss"),
                "steps": st.metrics.get("steps")}
        out[job.id] = probe_cached(cfg, rd, job.id, info, lambda d=st.dir, m=job.model: load_student(m, d), judge)
        add_probe_results(st.dir, out[job.id])  # into the student's model card
        for step in st.metrics.get("checkpoints") or []:
            d = st.dir / "checkpoints" / f"step-{step}"
            out[f"{job.id}/step-{step}"] = probe_cached(
                cfg, rd, f"{job.id}/step-{step}", dict(info, kind="checkpoint", student_dir=str(d), steps=step,
                                                       final_loss=None),
                lambda d=d, m=job.model: load_student(m, d), logprob_only=True)
    update_manifest(rd, cfg.model_dump(mode="json"), "probes",
                    {"probed": sorted(out), "seconds": round(time.perf_counter() - t0, 1)})
    return out
