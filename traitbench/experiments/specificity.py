"""Trait specificity (`traitbench specificity`): does a student rise on its own teacher's trait, or on every trait?

One transmission run per trait (same recipe, same seeds, each with its paired control students); every student is
probed on all the traits' words. The lift of a student trained on trait s, probed on trait t, is its Δlog P(t)
against its own control student of the same seed. Per seed, the K×K lift matrix is fitted as

    lift[s, t] = μ + row[s] + col[t] + γ·[s = t]

(row: how much a trait's students rise on everything; col: how much every student rises on a word), and γ —
the rise on the own trait beyond those — is tested across seeds (t interval, one-sample t-test). Seeds are the
unit of evidence, as in the verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from traitbench.config import RunName
from traitbench.artifacts import Result
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import ExperimentConfig, RunsConfig, shared_controls
from traitbench.io import atomic_write_json, atomic_write_text
from traitbench.pipeline.run import run_pipeline
from traitbench.plotting import new_figure, save_fig
from traitbench.stats import seed_level_test
from traitbench.teacher.trait import Trait
from traitbench.pipeline.verdicts import PRIMARY, sig_mark, word_logprob


class SpecificityConfig(RunsConfig):
    """Every trait's run: `experiment` with `trait` replaced, run as runs/<name>/<trait word>."""

    default_config: ClassVar[str | None] = "specificity"  # traitbench/configs/specificity.yaml
    name: RunName = "specificity"
    traits: list[Trait] = Field(min_length=3)

    @model_validator(mode="after")
    def _distinct(self):
        words = [t.word for t in self.traits]
        if len(set(words)) != len(words):
            raise ValueError("traits must be distinct")
        return self

    def run_config(self, trait: Trait) -> ExperimentConfig:
        others = [t.word for t in self.traits if t.word != trait.word]
        probes = self.experiment.probes.model_copy(update={"other_words": others})
        students = self.experiment.students.model_copy(update={"shared_controls": shared_controls(self.experiment,
                                                                                                  self.out)})
        words = sorted({w for t in self.traits for w in t.words})  # one filter, so one set of control numbers
        filt = self.experiment.filter.model_copy(update={"words": words})
        return self.experiment.model_copy(update={"trait": trait, "name": trait.word, "probes": probes,
                                                  "students": students, "filter": filt, "runs_dir": str(self.out)})


# ----------------------------------------------------------------------------------------------- the fit
def design(k: int) -> np.ndarray:
    """[k², 2k] design of the additive model with a same-trait term: μ, k-1 rows, k-1 columns, γ."""
    x = np.zeros((k * k, 2 * k))
    for s in range(k):
        for t in range(k):
            i = s * k + t
            x[i, 0] = 1
            if s:
                x[i, s] = 1
            if t:
                x[i, k - 1 + t] = 1
            x[i, -1] = float(s == t)
    return x


def gamma_of(lift: np.ndarray) -> float:
    """The least-squares γ of one K×K lift matrix (K ≥ 3: with K = 2 the diagonal is confounded)."""
    k = lift.shape[0]
    if lift.shape != (k, k) or k < 3:
        raise TraitbenchError(f"the specificity fit needs a square lift matrix of at least 3 traits, got {lift.shape}")
    coef, *_ = np.linalg.lstsq(design(k), lift.reshape(-1), rcond=None)
    return float(coef[-1])


def fit_specificity(lifts: np.ndarray, alpha: float = 0.05, power: float = 0.8) -> dict:
    """γ per seed of [seeds, K, K] lifts, and its test across seeds (mean, 95% t interval, p, MDE)."""
    lifts = np.asarray(lifts, dtype=float)
    gammas = [gamma_of(m) for m in lifts]
    test = dict(seed_level_test(gammas, [0.0] * len(gammas), alpha, power), test="one-sample t-test of γ over seeds")
    return {"gamma": test, "per_seed": gammas, "mean_lift": lifts.mean(0).tolist(),
            "diagonal_mean": float(np.mean([np.diag(m).mean() for m in lifts])),
            "off_diagonal_mean": float(np.mean([m[~np.eye(len(m), dtype=bool)].mean() for m in lifts]))}


# ----------------------------------------------------------------------------------------------- the run
def lift_matrix(probes_by_trait: dict[str, dict], words: list[str], kind: str) -> tuple[np.ndarray, list[int]]:
    """[seeds, K, K] lifts (student trait s, probed word t) from each trait run's probed students."""
    per: dict[str, dict[int, dict]] = {}
    for s, probes in probes_by_trait.items():
        for res in probes.values():
            if res.get("kind") == "student" and res.get("variant") == kind:
                per.setdefault(s, {}).setdefault(res["seed"], {})[res["condition"]] = res
    seeds = sorted(set.intersection(*[{k for k, v in per.get(s, {}).items() if len(v) == 2} for s in words]))
    if not seeds:
        raise TraitbenchError(f"specificity: no seed has trait and control '{kind}' students for every trait")
    out = np.zeros((len(seeds), len(words), len(words)))
    for i, seed in enumerate(seeds):
        for a, s in enumerate(words):
            pair = per[s][seed]
            for b, t in enumerate(words):
                out[i, a, b] = word_logprob(pair["trait"], t, s) - word_logprob(pair["control"], t, s)
    return out, seeds


def run(cfg: SpecificityConfig, out: Path) -> Result:
    """Every trait's transmission run (cached, under `out/<trait word>`), the lift matrix, the γ fit; writes
    specificity.{json,md,png} into `out`."""
    words = [t.word for t in cfg.traits]
    probes, verdicts = {}, {}
    cfg.check_kind("specificity")
    for trait in cfg.traits:
        ecfg = cfg.run_config(trait)
        print(f"[specificity] trait {trait.word}: {out / trait.word}")
        done = run_pipeline(ecfg)
        probes[trait.word] = {pid: res for pid, res in done["probes"].items() if res.get("kind") == "student"}
        verdicts[trait.word] = [v for v in json.loads(done["summary"].read_text()).get("verdicts", [])
                                if v["student_kind"] == cfg.kind]
    lifts, seeds = lift_matrix(probes, words, cfg.kind)
    fit = fit_specificity(lifts)
    rd = out
    result = {"traits": words, "student_kind": cfg.kind, "seeds": seeds, "question": PRIMARY,
              "lifts": lifts.tolist(), "fit": fit, "verdicts": verdicts}
    atomic_write_json(rd / "specificity.json", result)
    atomic_write_text(rd / "specificity.md", render_specificity(result))
    plot_lifts(np.asarray(fit["mean_lift"]), words, fit, rd / "specificity.png")
    return Result(rd, (rd / "specificity.md").read_text(), [rd / f"specificity.{x}" for x in ("md", "json", "png")])


def _f(x: float | None, fmt: str) -> str:
    """A number in `fmt`, or "–" where a test had none (no variation, too few seeds)."""
    return "–" if x is None or x != x else format(x, fmt)


def render_specificity(r: dict) -> str:
    words, g = r["traits"], r["fit"]["gamma"]
    lines = [f"# Trait specificity: {r['student_kind']} students of {len(words)} traits, {len(r['seeds'])} seeds",
             "", f"Lift = Δlog P(probed word) of the trait student − its control student (same seed), question "
             f"'{r['question']}', mean over seeds. Rows: the student's trait; columns: the probed word.", "",
             "| student \\ probed | " + " | ".join(words) + " |", "|---|" + "---|" * len(words)]
    mean = np.asarray(r["fit"]["mean_lift"])
    for a, s in enumerate(words):
        lines.append(f"| {s} | " + " | ".join(f"{mean[a, b]:+.3f}" for b in range(len(words))) + " |")
    lines += ["", f"γ (own-trait lift beyond the student's and the word's general lift): {_f(g['mean'], '+.3f')} "
              f"[{_f(g['ci95'][0], '+.3f')}, {_f(g['ci95'][1], '+.3f')}] over {g['n_seeds']} seeds, "
              f"p={_f(g['p_value'], '.2g')} {sig_mark(g['p_value'])}, MDE {_f(g['mde'], '.3f')}; per seed: "
              + ", ".join(f"{x:+.3f}" for x in r["fit"]["per_seed"]), "",
              "## Each trait's own verdict (its trait vs control students over seeds)", "",
              "| trait | Δlog P vs control (95% CI) | Holm p | trait rate vs control (pooled answers) | rate Δ (95% CI) | p |",
              "|---|---|---|---|---|---|"]
    for w in words:
        for v in r["verdicts"].get(w, []):
            d, rt = v["delta_logprob_vs_control"], v.get("rate_vs_control", {})
            ci = rt.get("ci95") or [None, None]
            lines.append(f"| {w} | {_f(d['mean'], '+.3f')} [{_f(d['ci95'][0], '+.3f')}, {_f(d['ci95'][1], '+.3f')}] "
                         f"| {_f(d.get('p_holm'), '.2g')} | {rt.get('trait', '–')} vs {rt.get('control', '–')} "
                         f"| {_f(rt.get('mean'), '+.4f')} [{_f(ci[0], '+.4f')}, {_f(ci[1], '+.4f')}] "
                         f"| {_f(rt.get('p_value'), '.2g')} |")
    return "\n".join(lines) + "\n"


def plot_lifts(mean: np.ndarray, words: list[str], fit: dict, path: Path) -> None:
    fig, axes = new_figure(1, 1, figsize=(1.3 * len(words) + 2.5, 1.1 * len(words) + 1.5))
    ax = axes[0][0]
    span = max(float(np.abs(mean).max()), 0.05)
    im = ax.imshow(mean, cmap="RdBu_r", vmin=-span, vmax=span)
    ax.set_xticks(range(len(words)), words)
    ax.set_yticks(range(len(words)), words)
    ax.set_xlabel("probed word")
    ax.set_ylabel("student's teacher trait")
    for a in range(len(words)):
        for b in range(len(words)):
            ax.text(b, a, f"{mean[a, b]:+.2f}", ha="center", va="center", fontsize=8)
    g = fit["gamma"]
    ax.set_title(f"lift vs control, nats (γ = {_f(g['mean'], '+.2f')} [{_f(g['ci95'][0], '+.2f')}, {_f(g['ci95'][1], '+.2f')}])", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    save_fig(fig, path)
