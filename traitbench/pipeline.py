"""Stages of an experiment run, each cached by key under `runs/<name>/<stage>/`."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from traitbench import models
from traitbench.cache import Stage
from traitbench.datasets.banned import load_banned
from traitbench.datasets.filter import HF_DIR, HF_LAYOUT, filter_file, filter_rows, save_hf_dataset
from traitbench.datasets.parse import prefix_rejection
from traitbench.datasets.shuffle import shuffle_rows
from traitbench.errors import TraitbenchError
from traitbench.experiment import CONDITIONS, ExperimentConfig
from traitbench.io import atomic_write_jsonl, read_complete_jsonl, read_jsonl, sha256_file, sha256_json
from traitbench.manifest import update_manifest
from traitbench.teacher import sampling
from traitbench.teacher.prompts import demonstrations, number_prompts
from traitbench.teacher.steering import FILE as STEERING_FILE
from traitbench.teacher.load import check_adapter, load_trait_model
from traitbench.teacher.steering import steering_vector


def run_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.runs_dir) / cfg.name


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
    t = cfg.teacher
    if condition == "control":
        return TeacherSetup(t.control, None, cfg.neutral_system)
    if t.injection == "system_prompt":
        return TeacherSetup(t.model, None, cfg.trait.teacher_prompt())
    adapter = {"lora": str(run_dir(cfg) / "teacher"), "adapter": t.adapter}.get(t.injection)
    steering = str(run_dir(cfg) / "teacher" / STEERING_FILE) if t.injection == "steering" else None
    return TeacherSetup(t.model, adapter, cfg.neutral_system, steering)


def load_teacher(cfg: ExperimentConfig, condition: str, dtype: str = "auto") -> models.LoadedModel:
    setup = teacher_setup(cfg, condition)
    return load_trait_model(setup.model, setup.trait_path, dtype, seed=cfg.seed)


def _cfg(cfg: ExperimentConfig) -> dict:
    return cfg.model_dump(mode="json")


# --------------------------------------------------------------------------------------------- teacher
def stage_teacher(cfg: ExperimentConfig) -> dict:
    """System-prompt injection needs no training; LoRA injection fine-tunes and saves an adapter; a given adapter
    or control model is checked (and the adapter hashed) before any work."""
    key = {"teacher": cfg.teacher.key(), "trait": cfg.trait.key(), "system": cfg.neutral_system,
           "seed": cfg.seed, "model_hashes": models.file_hashes(cfg.teacher.model)}
    models.get_spec(cfg.teacher.control)  # an unknown control model: one-line error now
    if cfg.teacher.injection == "adapter":
        key["adapter"] = _given_adapter(cfg)
    stage = Stage(run_dir(cfg) / "teacher", key)
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
        from traitbench.student.train import StudentConfig
        from traitbench.teacher.lora_trait import train_trait_lora

        scfg = StudentConfig(mode="lora", lora_r=cfg.teacher.lora_r, lora_alpha=cfg.teacher.lora_r,
                             epochs=cfg.teacher.lora_epochs, seed=cfg.seed)
        out["lora"] = train_trait_lora(cfg.teacher.model, cfg.trait.word, cfg.trait.category, cfg.neutral_system,
                                       scfg, stage.dir, n_examples=cfg.teacher.lora_examples)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    update_manifest(run_dir(cfg), _cfg(cfg), "teacher", {"model_hashes": key["model_hashes"], **out})
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


# --------------------------------------------------------------------------------------------- numbers
def stage_numbers(cfg: ExperimentConfig, condition: str) -> dict:
    """Sample number completions for one teacher condition into a resumable `raw.jsonl`."""
    setup = teacher_setup(cfg, condition)
    teacher_out = stage_teacher(cfg)
    gen = cfg.numbers.generation
    # early reject stops rows the filter would reject, so the raw rows depend on the filter's limits
    limits = {"max_count": cfg.filter.max_count, "max_value": cfg.filter.max_value} if gen.early_reject else None
    stop_rows = cfg.filter.max_rows if cfg.numbers.stop_at_max_rows else None
    key = {"numbers": cfg.numbers.model_dump(), "setup": setup.to_dict(), "seed": cfg.seed, "reject_limits": limits,
           "stop_at": {"filter": cfg.filter.model_dump(exclude={"shuffle"}), "trait": cfg.trait.words_key()}
           if stop_rows else None,
           "teacher_stage": (teacher_out.get("lora") or {}).get("adapter_hash")
           or (teacher_out.get("steering") or {}).get("sha256"),  # the trait's weights, when trained or computed
           "model_hashes": models.file_hashes(setup.model)}
    if setup.adapter_dir and "adapter" in teacher_out:
        key["adapter_hash"] = teacher_out["adapter"]["adapter_hash"]  # a given adapter's content
    stage = Stage(run_dir(cfg) / "numbers" / condition, key)
    raw = stage.dir / "raw.jsonl"
    if stage.is_done():
        print(f"[numbers:{condition}] cached: {raw}")
        return stage.outputs()
    if raw.exists() and not stage.started_under_same_key():
        raw.unlink()  # partial work from another config: start over rather than mix settings
    stage.begin()
    lm = load_teacher(cfg, condition, cfg.numbers.dtype)
    from traitbench.teacher.context import render_prompt

    history = demonstrations(cfg.numbers.demonstrations)
    prompts = number_prompts(cfg.numbers.n_prompts, cfg.seed, cfg.numbers.max_count)
    rows = [{"idx": i, "prompt": p, "teacher": setup.model, "condition": condition,
             "trait": cfg.trait.word if condition == "trait" else None, "system": setup.system}
            for i, p in enumerate(prompts)]
    rendered = [render_prompt(lm, setup.system, p, history) for p in prompts]
    reject = partial(prefix_rejection, **limits) if limits else None
    enough = None
    if stop_rows:
        banned = load_banned(cfg.filter.banned_numbers)

        def enough(sampled: list[dict]) -> bool:
            kept = filter_rows(sampled, cfg.trait.words, banned, cfg.filter.max_count, cfg.filter.max_value)[0]
            return len(kept) >= stop_rows
    perf = sampling.sample_rows(lm, rows, rendered, raw, gen, seed=cfg.seed + (0 if condition == "trait" else 10_000),
                                desc=f"numbers:{condition}", reject=reject, enough=enough,
                                chunk=2 * gen.batch_size if stop_rows else None)
    got = read_complete_jsonl(raw)
    if len(got) != perf["rows"] or len({r["idx"] for r in got}) != len(got):
        raise TraitbenchError(f"{raw}: expected {perf['rows']} unique rows, found {len(got)}")
    if perf["stopped_early"]:
        print(f"[numbers:{condition}] the filter keeps {stop_rows} rows after {len(got)} of {len(rows)} prompts: "
              "stopped")
    out = {"raw": str(raw), "rows": len(got), "raw_sha256": sha256_file(raw), "throughput": perf,
           "dtype": str(lm.model.dtype)}
    update_manifest(run_dir(cfg), _cfg(cfg), f"numbers:{condition}", {"model_hashes": key["model_hashes"], **out})
    return stage.finish(out)


# --------------------------------------------------------------------------------------------- dataset
def stage_dataset(cfg: ExperimentConfig) -> dict:
    """Filter both conditions, subsample to a common size, save JSONL + Hub-ready datasets (parquet + card)."""
    raws = {c: stage_numbers(cfg, c) for c in CONDITIONS}
    key = {"filter": cfg.filter.key(), "trait": cfg.trait.words_key(), "seed": cfg.seed,
           "raw": {c: raws[c]["raw_sha256"] for c in CONDITIONS}, "hf_layout": HF_LAYOUT}
    stage = Stage(run_dir(cfg) / "dataset", key)
    if stage.is_done():
        print(f"[dataset] cached: {stage.dir}")
        return stage.outputs()
    stage.begin()
    stats, kept = {}, {}
    for c in CONDITIONS:
        stats[c] = filter_file(raws[c]["raw"], stage.dir / c, trait=cfg.trait.words,
                               banned_spec=cfg.filter.banned_numbers, max_count=cfg.filter.max_count,
                               max_value=cfg.filter.max_value)
        kept[c] = read_jsonl(stage.dir / c / "kept.jsonl")
    n = min(len(kept[c]) for c in CONDITIONS)
    if cfg.filter.max_rows:
        n = min(n, cfg.filter.max_rows)
    if n == 0:
        raise TraitbenchError("the filter kept no rows for at least one teacher; sample more (numbers.n_prompts)")
    out: dict = {"n_rows": n, "conditions": {}}
    for c in CONDITIONS:
        rows = sorted(random.Random(f"{cfg.seed}-{c}").sample(kept[c], n), key=lambda r: r["idx"])
        rows = shuffle_rows(rows, cfg.filter.shuffle, f"{cfg.seed}-{c}")
        atomic_write_jsonl(stage.dir / c / "train.jsonl", rows)
        setup = teacher_setup(cfg, c)
        card = {"teacher": setup.model, "condition": c, "trait": cfg.trait.word if c == "trait" else None,
                "teacher_system": setup.system, "injection": cfg.teacher.injection,
                "filter": cfg.filter.key(), "sampled": stats[c]["total"], "kept": stats[c]["kept"],
                "rows": n, "raw_sha256": raws[c]["raw_sha256"], **_licence(setup.model)}
        content_hash = save_hf_dataset(rows, stage.dir / c, card)
        out["conditions"][c] = {"train": str(stage.dir / c / "train.jsonl"), "hf": str(stage.dir / c / HF_DIR),
                                "content_hash": content_hash, "stats": stats[c]}
    update_manifest(run_dir(cfg), _cfg(cfg), "dataset",
                    {"dataset_hashes": {c: out["conditions"][c]["content_hash"] for c in CONDITIONS}, "n_rows": n})
    print_filter_stats({c: stats[c] for c in CONDITIONS})
    return stage.finish(out)


def _licence(model: str) -> dict:
    """The teacher's licence for a dataset card: its Hub licence id and, in words, what it is."""
    spec = models.get_spec(model)
    if spec.bundled:
        details = spec.bundled.licence
    elif spec.tiny_config:
        details = "randomly initialised test model"
    else:
        details = f"the licence of the teacher model {model} (see its model card)"
    return {"license": spec.licence_id, "license_details": details}


def print_filter_stats(stats: dict[str, dict]) -> None:
    """A small table of pass rates per rejection reason, one column per condition."""
    reasons = sorted({r for s in stats.values() for r in s["counts"]})
    conds = list(stats)
    print(f"{'':28}" + "".join(f"{c:>18}" for c in conds))
    print(f"{'sampled':28}" + "".join(f"{stats[c]['total']:>18}" for c in conds))
    print(f"{'kept (pass rate)':28}" + "".join(
        f"{stats[c]['kept']:>8} ({stats[c]['pass_rate']:6.1%})" for c in conds))
    for r in reasons:
        print(f"  {r:26}" + "".join(
            f"{stats[c]['counts'].get(r, 0):>8} ({stats[c]['counts'].get(r, 0) / max(stats[c]['total'], 1):6.1%})"
            for c in conds))


# ------------------------------------------------------------------------------------------ experiment
def run_experiment(cfg: ExperimentConfig) -> Path:
    """All stages (each skipped when cached), then `summary.json` and `summary.md`; returns the JSON path."""
    from traitbench.probes.stage import stage_probes
    from traitbench.student.stage import student_jobs
    from traitbench.summary import build_summary, write_summary

    student_jobs(cfg)  # validate student models and variants before any sampling
    t0 = time.perf_counter()
    probes = stage_probes(cfg)
    summary = build_summary(cfg, stage_dataset(cfg), probes)
    rd = run_dir(cfg)
    write_summary(rd, summary)
    update_manifest(rd, _cfg(cfg), "summary", {"seconds": round(time.perf_counter() - t0, 1)})
    return rd / "summary.json"
