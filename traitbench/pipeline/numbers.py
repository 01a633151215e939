"""The numbers stage: each teacher condition answers the number prompts; completions go to a resumable
`raw.jsonl` (sampling stops early once the filter would keep `filter.max_rows` rows)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from traitbench.artifacts import NumbersOut, TeacherOut
from traitbench.cache import Stage, cached
from traitbench.datasets.banned import load_banned
from traitbench.datasets.filter import filter_rows
from traitbench.datasets.parse import prefix_rejection
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import CONDITIONS, ExperimentConfig
from traitbench.io import read_complete_jsonl, sha256_file, sha256_json
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.lm import sampling
from traitbench.lm.render import render_prompt
from traitbench.teacher.injections import INJECTIONS
from traitbench.teacher.prompts import demonstrations, number_prompts
from traitbench.teacher.setup import load_teacher


def stage_numbers(cfg: ExperimentConfig, teacher: TeacherOut,
                  conditions: tuple[str, ...] = CONDITIONS) -> dict[str, NumbersOut]:
    """The numbers stage: each teacher condition's number completions (`sample_numbers`), by condition."""
    return {c: sample_numbers(cfg, teacher, c) for c in conditions}


def _reject_limits(cfg: ExperimentConfig) -> dict | None:
    """The filter's limits that early reject applies while sampling (so the raw rows depend on them), or None."""
    return ({"max_count": cfg.filter.max_count, "max_value": cfg.filter.max_value}
            if cfg.numbers.generation.early_reject else None)


def _stop_rows(cfg: ExperimentConfig) -> int | None:
    """Kept rows after which sampling stops, or None."""
    return cfg.filter.max_rows if cfg.numbers.stop_at_max_rows else None


def numbers_key(cfg: ExperimentConfig, teacher: TeacherOut, condition: str) -> dict:
    """One condition's numbers stage key (the trait condition's holds the identity of the trait's weights, when the
    injection made or was given some)."""
    setup = teacher.conditions[condition]
    limits, stop_rows = _reject_limits(cfg), _stop_rows(cfg)
    key = {"numbers": cfg.numbers.model_dump(), "setup": setup.to_dict(), "seed": cfg.seed, "reject_limits": limits,
           "stop_at": {"filter": cfg.filter.model_dump(exclude={"shuffle", "words"}), "trait": cfg.filter_words_key()}
           if stop_rows else None, "teacher_stage": None, "model_hashes": models.file_hashes(setup.model)}
    if condition == "trait":
        key.update(INJECTIONS[cfg.teacher.injection].numbers_key(cfg, teacher.made))
    return key


def sample_numbers(cfg: ExperimentConfig, teacher: TeacherOut, condition: str) -> NumbersOut:
    """Sample number completions for one teacher condition into a resumable `raw.jsonl`, cached by key."""
    setup = teacher.conditions[condition]
    key = numbers_key(cfg, teacher, condition)
    run = RunLayout.of(cfg)
    folder = run.numbers(condition)
    if condition == "control" and cfg.students.shared_controls is not None:  # one folder per key, as the students
        folder = Path(cfg.students.shared_controls) / f"numbers-control-{sha256_json(key)[:12]}"
    raw = folder / run.raw(condition).name
    return cached(Stage(folder, key), lambda stage: _sample(cfg, setup, condition, raw), NumbersOut,
                  label=f"numbers:{condition}", manifest=(run.root, cfg.model_dump(mode="json")),
                  record=lambda out: {"model_hashes": key["model_hashes"], **out.to_dict()}, partial=raw)


def _sample(cfg: ExperimentConfig, setup, condition: str, raw) -> NumbersOut:
    """The sampling itself: prompts rendered for the teacher, completions appended to `raw` (resumed)."""
    gen = cfg.numbers.generation
    limits, stop_rows = _reject_limits(cfg), _stop_rows(cfg)
    lm = load_teacher(setup, cfg.numbers.dtype, cfg.seed)
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
            kept = filter_rows(sampled, cfg.filter_words(), banned, cfg.filter.max_count, cfg.filter.max_value)[0]
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
    return NumbersOut(raw, len(got), sha256_file(raw), perf, str(lm.model.dtype))
