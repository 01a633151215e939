"""Where transmission stops: distilled students from starting points ever further from the teacher's base.

Each start is the teacher's base after K steps of continued pretraining on text about neither numbers nor animals
(Jane Austen's novels, `student/pretrain.py`; K = 0 is the base itself), with its distance to the base and its
held-out perplexity. Trait and control students are distilled from every start on the same teacher data, over
seeds (one transmission run, `runs_dir/name/<trait>`), and a second run with another trait's teacher gives the
generic rise of the trait word on the same starts. With `data_draws: per_seed` each seed's students train on a draw
of the teacher's numbers of their own (`pipeline.run.draw_configs`), so the tests over seeds cover the draw of the
data as well as training. The effect against distance is tested across seeds: per seed,
the least-squares slope of the start's trait-minus-control effect on its distance; a one-sample t-test of the slopes.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import field_validator, model_validator

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName, unique
from traitbench.corpora import austen
from traitbench.io import atomic_write_json, atomic_write_text
from traitbench.lm import models
from traitbench.pipeline.config import ExperimentConfig, shared_controls
from traitbench.pipeline.run import draws_refusal, probes_per_seed_draw, run_pipeline
from traitbench.pipeline.verdicts import PRIMARY, build_verdicts, paired_word_effects
from traitbench.plotting import new_figure, save_fig
from traitbench.stats import mean_ci, seed_fit_test
from traitbench.student.pretrain import PretrainConfig, continued_starts
from traitbench.teacher.trait import Trait

VARIANT = "distill"  # the students' kind name in each run


class SharedInitConfig(RunConfig):
    default_config: ClassVar[str | None] = "shared-init"  # traitbench/configs/shared-init.yaml
    name: RunName = "shared-init"
    # the transmission run the starts join: teacher, data, seeds, probes (its own students are replaced)
    experiment: ExperimentConfig = ExperimentConfig()
    student: dict = {"mode": "distill", "lora_r": 64, "lora_alpha": 64}  # every start's students (StudentConfig)
    steps: list[int] = [0, 30, 100, 300]  # continued-pretraining steps of each start (0: the teacher's base)
    pretrain: PretrainConfig = PretrainConfig()  # how the starts are made
    other_trait: Trait | None = Trait(word="eagle")  # its teacher's students, probed on the trait word: generic rise
    # one: every seed's students on one draw of the teacher's numbers (their CI is over training only); per_seed:
    # each seed on its own draw (`pipeline.run.draw_configs`: the CI covers the data too; the numbers sampled once
    # per seed)
    data_draws: Literal["one", "per_seed"] = "one"

    @model_validator(mode="after")
    def _draws(self):
        refusal = draws_refusal(self.experiment.teacher.injection) if self.data_draws == "per_seed" else None
        if refusal:  # at load, before the starts are made
            raise ValueError(refusal)
        return self

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[int]) -> list[int]:
        if len(v) < 2 or any(k < 0 for k in v):
            raise ValueError("needs at least two step counts of 0 or more (a trend needs two distances)")
        return unique(v, "step count")


def _corpus() -> tuple[str, str, str]:
    """The Austen train and held-out text and the corpus' hash (fetched once: `make corpus`)."""
    austen.fetch_austen()
    return austen.austen_text("train"), austen.austen_text("heldout"), austen.corpus_source()["text_sha256"]


def run_config(cfg: SharedInitConfig, out: Path, trait: Trait, start_models: list[str]) -> ExperimentConfig:
    """One trait's transmission run under `out/<trait word>`: distilled students of every start, no others; the
    numbers of both teachers filtered on both traits' words, so the control numbers and students are sampled and
    trained once for both runs (kept in `out/controls`)."""
    data = cfg.experiment.model_dump()
    data.update(name=trait.word, runs_dir=str(out), trait=trait.model_dump())
    data["students"].update(models=[], variants=[{"name": VARIANT, "train": cfg.student, "models": start_models}],
                            shared_controls=shared_controls(cfg.experiment, out))
    if cfg.other_trait is not None:
        data["filter"]["words"] = sorted({*cfg.experiment.trait.words, *cfg.other_trait.words})  # one control draw
        data["probes"]["other_words"] = [w for w in (cfg.experiment.trait.word, cfg.other_trait.word)
                                         if w != trait.word]
    return ExperimentConfig.model_validate(data)


def trait_probes(cfg: SharedInitConfig, out: Path, trait: Trait, start_models: list[str]) -> dict[str, dict]:
    """One trait's probed models: its run's, or with `data_draws: per_seed` every seed's run on its own draw."""
    ecfg = run_config(cfg, out, trait, start_models)
    return probes_per_seed_draw(ecfg) if cfg.data_draws == "per_seed" else run_pipeline(ecfg)["probes"]


def trend(distances: list[float], per_seed: np.ndarray) -> dict:
    """Per seed the least-squares slope of effect on distance ([seeds, starts] effects); their t-test over seeds."""
    return seed_fit_test(distances, per_seed, 1,
                         "one-sample t-test over training seeds of the slope of the effect on the distance")


def _summary_stats(values: list[float]) -> dict:
    m = mean_ci(values)
    return {"mean": m.mean, "ci95": [m.lo, m.hi], "per_seed": [float(v) for v in values]}


def run(cfg: SharedInitConfig, out: Path) -> Result:
    """The starts (each cached), the trait run and the other trait's run on them, the effect against distance."""
    teacher_base = cfg.experiment.teacher.control
    models.check_files(teacher_base)
    train, heldout, sha = _corpus()
    starts = continued_starts(teacher_base, train, heldout, sha, cfg.pretrain, cfg.steps, models.cache_dir() / "starts")
    names = [s["model"] for s in starts]
    trait, word = cfg.experiment.trait, cfg.experiment.trait.word
    seeds = cfg.experiment.students.seeds
    probes = trait_probes(cfg, out, trait, names)
    verdicts = {v["model"]: v for v in build_verdicts(probes, word, {VARIANT: cfg.student}, trait_kind=trait.kind)
                if v["student_kind"] == VARIANT}  # as the run's summary has them (one draw), Holm over the starts
    own = np.array([paired_word_effects(probes, seeds, word, word, variant=VARIANT, model=m)
                    for m in names])  # [starts, seeds]
    rows = []
    for s, name, eff in zip(starts, names, own):
        v = verdicts[name]["delta_logprob_vs_control"]
        rows.append({"steps": s["steps"], "model": name, "distance": s["distance"],
                     "heldout_perplexity": s["heldout_perplexity"], "start_seconds": s["seconds"],
                     "effect": {k: v[k] for k in ("mean", "ci95", "p_value", "p_holm", "mde", "per_seed")}})
    distances = [s["distance"] for s in starts]
    result = {"trait": word, "teacher": cfg.experiment.teacher.model, "student": cfg.student, "seeds": seeds,
              "data_draws": cfg.data_draws, "question": PRIMARY, "starts": rows, "trend": trend(distances, own.T),
              "other_trait": None}
    if cfg.other_trait is not None:
        other = trait_probes(cfg, out, cfg.other_trait, names)
        generic = np.array([paired_word_effects(other, seeds, word, cfg.other_trait.word, variant=VARIANT,
                                                 model=m) for m in names])
        for row, g, o in zip(rows, generic, own):
            row["generic"], row["specific"] = _summary_stats(list(g)), _summary_stats(list(o - g))
        result["other_trait"] = cfg.other_trait.word
        result["specific_trend"] = trend(distances, (own - generic).T)
    atomic_write_json(out / "shared_init.json", result)
    atomic_write_text(out / "shared_init.md", render(result))
    plot(result, out / "shared_init.png")
    return Result(out, render(result), [out / f"shared_init.{x}" for x in ("md", "json", "png")],
                  manifest={"starts": {str(r["steps"]): r["start_seconds"] for r in rows}})


DRAWS = {"one": "all on one draw of the teacher's numbers (the CIs cover training, not the data's draw)",
         "per_seed": "each seed on its own draw of the teacher's numbers (the CIs cover the data's draw)"}


def _ci(d: dict, fmt: str = "+.3f") -> str:
    lo, hi = d["ci95"]
    return f"{d['mean']:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _p(x) -> str:
    return "–" if x is None or x != x else f"{x:.2g}"


def render(r: dict) -> str:
    t = r["trend"]
    lines = [f"# Where transmission stops: '{r['trait']}' students distilled from starts away from the teacher's base",
             "", f"Δlog P('{r['trait']}') of trait vs control students (same seed), question '{r['question']}', "
             f"{len(r['seeds'])} seeds, {DRAWS[r.get('data_draws', 'one')]}; p Holm-adjusted within the run.", "",
             "| steps | distance | held-out ppl | effect (95% CI) | p (Holm) | MDE |"
             + (f" generic ({r['other_trait']} students) | specific |" if r["other_trait"] else ""),
             "|---" * (8 if r["other_trait"] else 6) + "|"]
    for row in r["starts"]:
        e = row["effect"]
        line = (f"| {row['steps']} | {row['distance']:.4f} | {row['heldout_perplexity']:.2f} | {_ci(e)} | "
                f"{_p(e['p_holm'])} | {e['mde']:.3f} |")
        if r["other_trait"]:
            line += f" {_ci(row['generic'])} | {_ci(row['specific'])} |"
        lines.append(line)
    lines += ["", f"Trend of the effect on the distance: slope {_ci(t, '+.2f')} nats per unit distance, "
              f"p = {_p(t['p_value'])} ({t['test']})."]
    if r["other_trait"]:
        s = r["specific_trend"]
        lines.append(f"Trend of the specific part (trait students − {r['other_trait']} students): slope "
                     f"{_ci(s, '+.2f')}, p = {_p(s['p_value'])}.")
    return "\n".join(lines) + "\n"


def plot(r: dict, path: Path) -> None:
    fig, axes = new_figure(figsize=(6.5, 4.0))
    ax = axes[0][0]
    x = [row["distance"] for row in r["starts"]]
    series = [("effect", f"'{r['trait']}' students")]
    if r["other_trait"]:
        series += [("generic", f"'{r['other_trait']}' students (generic)"), ("specific", "specific")]
    for key, label in series:
        m = [row[key]["mean"] for row in r["starts"]]
        err = np.array([[row[key]["mean"] - row[key]["ci95"][0], row[key]["ci95"][1] - row[key]["mean"]]
                        for row in r["starts"]]).T
        ax.errorbar(x, m, yerr=err, marker="o", capsize=3, label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("relative weight distance of the start to the teacher's base")
    ax.set_ylabel(f"Δlog P('{r['trait']}') vs control (nats)")
    ax.legend(fontsize=8)
    save_fig(fig, path)
