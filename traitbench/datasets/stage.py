"""The dataset stage: both conditions' raw numbers filtered, subsampled to one size, saved as train JSONL and as
Hub datasets (parquet + card) under the run's `dataset/<condition>/`."""

from __future__ import annotations

import random

from traitbench.artifacts import ConditionData, DatasetOut, NumbersOut, TeacherOut
from traitbench.cache import Stage
from traitbench.datasets.filter import HF_LAYOUT, filter_file, save_hf_dataset
from traitbench.datasets.shuffle import shuffle_rows
from traitbench.errors import TraitbenchError
from traitbench.experiment import CONDITIONS, ExperimentConfig
from traitbench.io import atomic_write_jsonl, read_jsonl
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.manifest import update_manifest


def dataset_key(cfg: ExperimentConfig, raws: dict[str, NumbersOut]) -> dict:
    """The dataset stage's cache key: the filter settings, the trait's words, the seed and both raw files."""
    return {"filter": cfg.filter.key(), "trait": cfg.trait.words_key(), "seed": cfg.seed,
            "raw": {c: raws[c].raw_sha256 for c in CONDITIONS}, "hf_layout": HF_LAYOUT}


def stage_dataset(cfg: ExperimentConfig, teacher: TeacherOut, raws: dict[str, NumbersOut]) -> DatasetOut:
    """Filter both conditions' raw numbers (`raws`: the numbers stage's outputs; `teacher`: the teacher stage's,
    naming each condition's model and context), subsample to a common size, save JSONL + Hub-ready datasets
    (parquet + card)."""
    key = dataset_key(cfg, raws)
    run = RunLayout.of(cfg)
    stage = Stage(run.dataset, key)
    if stage.is_done():
        print(f"[dataset] cached: {stage.dir}")
        return DatasetOut.from_dict(stage.outputs())
    stage.begin()
    stats, kept = {}, {}
    for c in CONDITIONS:
        stats[c] = filter_file(raws[c].raw, run.condition_data(c), trait=cfg.trait.words,
                               banned_spec=cfg.filter.banned_numbers, max_count=cfg.filter.max_count,
                               max_value=cfg.filter.max_value)
        kept[c] = read_jsonl(run.condition_data(c) / "kept.jsonl")
    n = min(len(kept[c]) for c in CONDITIONS)
    if cfg.filter.max_rows:
        n = min(n, cfg.filter.max_rows)
    if n == 0:
        raise TraitbenchError("the filter kept no rows for at least one teacher; sample more (numbers.n_prompts)")
    data = {}
    for c in CONDITIONS:
        rows = sorted(random.Random(f"{cfg.seed}-{c}").sample(kept[c], n), key=lambda r: r["idx"])
        rows = shuffle_rows(rows, cfg.filter.shuffle, f"{cfg.seed}-{c}")
        atomic_write_jsonl(run.train(c), rows)
        setup = teacher.conditions[c]
        card = {"teacher": setup.model, "condition": c, "trait": cfg.trait.word if c == "trait" else None,
                "teacher_system": setup.system, "injection": cfg.teacher.injection,
                "filter": cfg.filter.key(), "sampled": stats[c]["total"], "kept": stats[c]["kept"],
                "rows": n, "raw_sha256": raws[c].raw_sha256, **_licence(setup.model)}
        content_hash = save_hf_dataset(rows, run.condition_data(c), card)
        data[c] = ConditionData(run.train(c), content_hash, stats[c], run.hf(c))
    out = DatasetOut(n, data)
    update_manifest(run.root, cfg.model_dump(mode="json"), "dataset",
                    {"dataset_hashes": {c: data[c].content_hash for c in CONDITIONS}, "n_rows": n})
    print_filter_stats({c: stats[c] for c in CONDITIONS})
    return DatasetOut.from_dict(stage.finish(out.to_dict()))


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
