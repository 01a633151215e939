"""The teacher stage: the trait teacher made ready (system prompt stated, LoRA trained, steering vector computed, a
given adapter checked and hashed), cached under the run's `teacher/`."""

from __future__ import annotations

import time
from pathlib import Path

from traitbench.lm import models
from traitbench.cache import Stage
from traitbench.experiment import CONDITIONS, ExperimentConfig
from traitbench.io import sha256_file, sha256_json
from traitbench.layout import RunLayout
from traitbench.manifest import update_manifest
from traitbench.student.config import StudentConfig
from traitbench.teacher.load import check_adapter
from traitbench.teacher.prompts import number_prompts
from traitbench.teacher.setup import teacher_setup
from traitbench.teacher.steering import steering_vector


def stage_teacher(cfg: ExperimentConfig) -> dict:
    """System-prompt injection needs no training; LoRA injection fine-tunes and saves an adapter; a given adapter
    or control model is checked (and the adapter hashed) before any work."""
    key = {"teacher": cfg.teacher.key(), "trait": cfg.trait.key(), "system": cfg.neutral_system,
           "seed": cfg.seed, "model_hashes": models.file_hashes(cfg.teacher.model)}
    models.get_spec(cfg.teacher.control)  # an unknown control model: one-line error now
    if cfg.teacher.injection == "adapter":
        key["adapter"] = _given_adapter(cfg)
    run = RunLayout.of(cfg)
    stage = Stage(run.teacher, key)
    if stage.is_done():
        print(f"[teacher] cached: {stage.dir}")
        return stage.outputs()
    stage.begin()
    t0 = time.perf_counter()
    out: dict = {"conditions": {c: teacher_setup(cfg, c).to_dict() for c in CONDITIONS}}
    if cfg.teacher.injection == "steering":
        out["steering"] = _steering_teacher(cfg, stage.dir)
    if cfg.teacher.injection == "adapter":
        out["adapter"] = key["adapter"]
    if cfg.teacher.injection == "lora":
        from traitbench.teacher.lora_trait import train_trait_lora  # heavy (TRL, PEFT): only this injection trains

        scfg = StudentConfig(mode="lora", lora_r=cfg.teacher.lora_r, lora_alpha=cfg.teacher.lora_r,
                             epochs=cfg.teacher.lora_epochs, seed=cfg.seed)
        out["lora"] = train_trait_lora(cfg.teacher.model, cfg.trait.word, cfg.trait.category, cfg.neutral_system,
                                       scfg, stage.dir, n_examples=cfg.teacher.lora_examples)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    update_manifest(run.root, cfg.model_dump(mode="json"), "teacher", {"model_hashes": key["model_hashes"], **out})
    return stage.finish(out)


def _given_adapter(cfg: ExperimentConfig) -> dict:
    """`teacher.adapter`, checked against `teacher.model`: its folder and the hash of its files (the model card,
    README.md, left out: the probes stage adds results to a student's card, which must not void this key)."""
    folder = check_adapter(cfg.teacher.adapter, cfg.teacher.model)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != "README.md"}
    return {"folder": str(folder), "adapter_hash": sha256_json(files)}


def _steering_teacher(cfg: ExperimentConfig, folder: Path) -> dict:
    """Compute and save the trait's steering vector from the teacher model's own contexts."""
    lm = models.load(cfg.teacher.model, dtype=cfg.numbers.dtype, seed=cfg.seed)
    prompts = number_prompts(cfg.teacher.steering_prompts, cfg.seed + 20_000, cfg.numbers.max_count)
    st = steering_vector(lm, cfg.trait.teacher_prompt(), cfg.neutral_system, prompts, cfg.teacher.steering_layer,
                         cfg.teacher.steering_scale)
    path = st.save(folder)
    print(f"[teacher] steering vector: layer {st.layer}, norm {float(st.vector.norm()):.2f}, scale {st.scale}")
    return {"file": str(path), "layer": st.layer, "norm": round(float(st.vector.norm()), 4), "scale": st.scale,
            "sha256": sha256_file(path)}
