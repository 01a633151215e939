"""The dataset stage: both conditions' raw numbers filtered, subsampled to one size, saved as train JSONL and as
Hub datasets (parquet + card) under the run's `dataset/<condition>/`."""

from __future__ import annotations

import random

from traitbench.artifacts import ConditionData, DatasetOut, NumbersOut, TeacherOut
from traitbench.cache import Stage, cached
from traitbench.datasets.filter import HF_LAYOUT, filter_file, print_filter_stats, save_hf_dataset
from traitbench.datasets.shuffle import shuffle_rows
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import CONDITIONS, ExperimentConfig
from traitbench.io import atomic_write_jsonl, read_jsonl
from traitbench.layout import RunLayout
from traitbench.lm import models


def dataset_key(cfg: ExperimentConfig, raws: dict[str, NumbersOut]) -> dict:
    """The dataset stage's cache key: the filter settings, the trait's words, the seed and both raw files."""
    return {"filter": cfg.filter.key(), "trait": cfg.filter_words_key(), "seed": cfg.seed,
            "raw": {c: raws[c].raw_sha256 for c in CONDITIONS}, "hf_layout": HF_LAYOUT}


def stage_dataset(cfg: ExperimentConfig, teacher: TeacherOut, raws: dict[str, NumbersOut]) -> DatasetOut:
    """Filter both conditions' raw numbers (`raws`: the numbers stage's outputs; `teacher`: the teacher stage's,
    naming each condition's model and context), subsample to a common size, save JSONL + Hub-ready datasets
    (parquet + card)."""
    run = RunLayout.of(cfg)
    return cached(Stage(run.dataset, dataset_key(cfg, raws)), lambda stage: _filter(cfg, teacher, raws, run),
                  DatasetOut, label="dataset", manifest=(run.root, cfg.model_dump(mode="json")),
                  record=lambda out: {"dataset_hashes": {c: out.conditions[c].content_hash for c in CONDITIONS},
                                      "n_rows": out.n_rows})


def _filter(cfg: ExperimentConfig, teacher: TeacherOut, raws: dict[str, NumbersOut], run: RunLayout) -> DatasetOut:
    """Both conditions filtered, subsampled to one size and saved (train JSONL, Hub folder); the pass rates printed."""
    stats, kept = {}, {}
    for c in CONDITIONS:
        stats[c] = filter_file(raws[c].raw, run.condition_data(c), trait=cfg.filter_words(),
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
    print_filter_stats({c: stats[c] for c in CONDITIONS})
    return DatasetOut(n, data)


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
