"""What distillation transmission needs: the LoRA rank, full fine-tuning, and the context shared with the probe.

One transmission run of the trait teacher (`runs_dir/name/<trait>`) whose students are the configured distilled
kinds (each a `StudentVariant`: LoRA ranks, a full fine-tune, a kind trained under another system text), all from
the teacher's own base, over seeds, each against its paired control student; a second run with another trait's
teacher gives each kind's generic rise of the trait word (its students probed on it), so a kind's specific part is
its effect less that rise, per seed.

- Rank: per seed, the effect against log2(rank) of the LoRA kinds, fitted by a parabola; its curvature tested over
  seeds (an inverted U: negative curvature).
- Context: the `context_kinds` students probed again under each of `contexts` (the run's own probe context is
  "train"), so a kind trained under one system text is measured under it, under another and under none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName, prompt_text
from traitbench.io import atomic_write_json, atomic_write_text
from traitbench.lm.tuned import StudentLoader
from traitbench.pipeline.config import ExperimentConfig, StudentVariant, shared_controls
from traitbench.pipeline.jobs import student_jobs
from traitbench.pipeline.probes import probe_cached, probe_context, student_probes
from traitbench.pipeline.run import run_pipeline
from traitbench.pipeline.verdicts import PRIMARY, paired_word_effects
from traitbench.plotting import new_figure, save_fig
from traitbench.stats import holm, seed_fit_test, seed_level_test
from traitbench.student.config import StudentConfig
from traitbench.teacher.trait import Trait

TRAIN = "train"  # the run's own probe context (`probes.context`), always measured


class DistillConditionsConfig(RunConfig):
    default_config: ClassVar[str | None] = "distill-conditions"  # traitbench/configs/distill-conditions.yaml
    name: RunName = "distill-conditions"
    # the transmission run: teacher, data, seeds, probes (its students are replaced by `kinds`)
    experiment: ExperimentConfig = ExperimentConfig()
    kinds: list[StudentVariant] = Field(min_length=1)  # distilled students of the teacher's base, side by side
    other_trait: Trait | None = Trait(word="eagle")  # its teacher's students, probed on the trait word: generic rise
    # further probe contexts of the `context_kinds` students: name -> "none" or a system text
    contexts: dict[str, str] = {}
    context_kinds: list[str] = []

    @model_validator(mode="after")
    def _check(self):
        names = [k.name for k in self.kinds]
        for k in self.kinds:
            if student_config_of(self, k).mode != "distill":
                raise ValueError(f"kind {k.name!r}: every kind is distilled (mode: distill)")
            if k.models is not None:
                raise ValueError(f"kind {k.name!r}: every kind trains the teacher's own base (leave models out)")
        bad = [k for k in self.context_kinds if k not in names]
        if bad:
            raise ValueError(f"context_kinds: {bad} are not kinds ({', '.join(names)})")
        if TRAIN in self.contexts:
            raise ValueError(f"contexts: {TRAIN!r} is the run's own probe context, always measured")
        for text in self.contexts.values():
            prompt_text(text)
        return self


def student_config_of(cfg: DistillConditionsConfig, kind: StudentVariant) -> StudentConfig:
    """A kind's trainer settings (the run's shared ones, then the kind's)."""
    return StudentConfig.model_validate({**cfg.experiment.students.train, **kind.train})


def run_config(cfg: DistillConditionsConfig, trait: Trait) -> ExperimentConfig:
    """One trait's transmission run under `out/<trait word>`: the kinds only; controls kept once in `out/controls`."""
    data = cfg.experiment.model_dump()
    words = sorted({*cfg.experiment.trait.words, *(cfg.other_trait.words if cfg.other_trait else [])})
    data.update(name=trait.word, runs_dir=str(cfg.out), trait=trait.model_dump())
    data["students"].update(models=[], variants=[k.model_dump() for k in cfg.kinds],
                            shared_controls=shared_controls(cfg.experiment, cfg.out))
    data["filter"]["words"] = words  # one filter for both teachers: one set of control numbers
    if cfg.other_trait is not None:
        data["probes"]["other_words"] = [w for w in (cfg.experiment.trait.word, cfg.other_trait.word)
                                         if w != trait.word]
    return ExperimentConfig.model_validate(data)


def context_probes(ecfg: ExperimentConfig, done: dict, kinds: list[str], contexts: dict[str, str], out: Path
                   ) -> dict[str, dict[str, dict]]:
    """{context name: {probe id: result}} of the `kinds` students probed under each further context (each probe
    cached in `out/contexts/<name>/<trait>`)."""
    loader = StudentLoader(ecfg.probes.dtype)
    res: dict[str, dict[str, dict]] = {}
    for name, text in contexts.items():
        ccfg = ecfg.model_copy(update={"probes": ecfg.probes.model_copy(update={"context": text})})
        run_dir = out / "contexts" / name / ecfg.trait.word
        res[name] = {}
        for job in student_jobs(ecfg):
            if job.variant not in kinds:
                continue
            for pid, info, d in student_probes(ecfg, job, done["students"][job.id]):
                if info["kind"] != "student":
                    continue
                info = dict(info, system=probe_context(ccfg))
                res[name][pid] = probe_cached(ccfg, run_dir, pid, info, lambda d=d, m=job.model: loader(m, d))
    return res


def _stats(values: list[float]) -> dict:
    t = seed_level_test(values, [0.0] * len(values))
    return {k: t[k] for k in ("mean", "ci95", "p_value", "mde", "per_seed")}


def rank_curvature(ranks: list[int], per_seed: np.ndarray) -> dict:
    """Per seed the parabola of effect on log2(rank) ([seeds, ranks] effects); its curvature tested over seeds."""
    return seed_fit_test(np.log2(np.asarray(ranks, dtype=float)), per_seed, 2,
                         "one-sample t-test over training seeds of the curvature of the effect on log2(rank) "
                         "(negative: an inverted U)")


def run(cfg: DistillConditionsConfig, out: Path) -> Result:
    trait, word = cfg.experiment.trait, cfg.experiment.trait.word
    seeds = cfg.experiment.students.seeds
    names = [k.name for k in cfg.kinds]
    runs = [(trait, run_config(cfg, trait))]
    if cfg.other_trait is not None:
        runs.append((cfg.other_trait, run_config(cfg, cfg.other_trait)))
    contexts = {TRAIN: None, **cfg.contexts}
    # effects[context][run trait word][kind]: per seed, log P(word) of trait − control students
    per: dict[str, dict[str, dict[str, list[float]]]] = {c: {} for c in contexts}
    verdicts = {}
    for t, ecfg in runs:
        print(f"[distill-conditions] {t.word} teacher: {out / t.word}")
        done = run_pipeline(ecfg)
        if t.word == word:
            verdicts = {v["student_kind"]: v for v in json.loads(done["summary"].read_text())["verdicts"]}
        probed = {TRAIN: done["probes"], **context_probes(ecfg, done, cfg.context_kinds, cfg.contexts, out)}
        for c in contexts:
            kinds = names if c == TRAIN else cfg.context_kinds
            per[c][t.word] = {k: paired_word_effects(probed[c], seeds, word, t.word, variant=k) for k in kinds}
    other = cfg.other_trait.word if cfg.other_trait else None
    rows = []
    for k in cfg.kinds:
        sc = student_config_of(cfg, k)
        own = per[TRAIN][word][k.name]
        v = verdicts[k.name]["delta_logprob_vs_control"]
        row = {"kind": k.name, "params": sc.distill_params, "rank": sc.lora_r if sc.distill_params == "lora" else None,
               "lr": sc.lr, "context": k.context,
               "effect": {x: v[x] for x in ("mean", "ci95", "p_value", "p_holm", "mde", "per_seed")}}
        if other:
            g = per[TRAIN][other][k.name]
            row["generic"], row["specific"] = _stats(g), _stats(list(np.subtract(own, g)))
        rows.append(row)
    result = {"trait": word, "other_trait": other, "teacher": cfg.experiment.teacher.model, "seeds": seeds,
              "question": PRIMARY, "neutral_system": cfg.experiment.neutral_system, "kinds": rows,
              "rank_test": None, "contexts": []}
    lora = sorted((r for r in rows if r["rank"] is not None and r["context"] == "neutral"), key=lambda r: r["rank"])
    if len({r["rank"] for r in lora}) >= 3:
        ranks = [r["rank"] for r in lora]
        result["rank_test"] = {"ranks": ranks, "effect": rank_curvature(ranks, np.array([r["effect"]["per_seed"]
                                                                                          for r in lora]).T)}
        if other:
            result["rank_test"]["specific"] = rank_curvature(ranks, np.array([r["specific"]["per_seed"]
                                                                               for r in lora]).T)
    cells = []
    for k in cfg.context_kinds:
        kind = next(x for x in cfg.kinds if x.name == k)
        for c in contexts:
            own = per[c][word][k]
            cell = {"kind": k, "trained_under": kind.system(cfg.experiment.neutral_system),
                    "probe_context": c, "probed_under": _probe_text(cfg, c), "effect": _stats(own)}
            if other:
                cell["generic"] = _stats(per[c][other][k])
                cell["specific"] = _stats(list(np.subtract(own, per[c][other][k])))
            cells.append(cell)
    for part in ("effect", "specific"):  # Holm within the context table
        ps = [c[part]["p_value"] for c in cells if part in c]
        for c, p in zip([c for c in cells if part in c], holm(ps)):
            c[part]["p_holm"] = p
    result["contexts"] = cells
    atomic_write_json(out / "distill_conditions.json", result)
    text = render(result)
    atomic_write_text(out / "distill_conditions.md", text)
    plot(result, out / "distill_conditions.png")
    return Result(out, text, [out / f"distill_conditions.{x}" for x in ("md", "json", "png")])


def _probe_text(cfg: DistillConditionsConfig, c: str) -> str | None:
    """The system text students are probed under in context `c`."""
    p = cfg.experiment.probes
    return probe_context(cfg.experiment if c == TRAIN else cfg.experiment.model_copy(
        update={"probes": p.model_copy(update={"context": cfg.contexts[c]})}))


def _ci(d: dict, fmt: str = "+.3f") -> str:
    lo, hi = d["ci95"]
    return f"{d['mean']:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _p(x) -> str:
    return "–" if x is None or x != x else f"{x:.2g}"


def _quote(text: str | None) -> str:
    return "no system message" if text is None else f"“{text}”"


def render(r: dict) -> str:
    o = r["other_trait"]
    lines = [f"# What distillation transmission needs: '{r['trait']}' students of {r['teacher']}", "",
             f"Δlog P('{r['trait']}') of trait vs control students (same seed), question '{r['question']}', "
             f"{len(r['seeds'])} seeds; p Holm-adjusted within the run"
             + (f"; generic: the {o} teacher's students probed on '{r['trait']}'; specific = effect − generic, "
                "per seed." if o else "."), "",
             "## Student kinds (probed in their training context)", "",
             "| kind | trains | lr | effect (95% CI) | p (Holm) | MDE |"
             + (" generic (95% CI) | specific (95% CI) | p |" if o else ""),
             "|---" * (9 if o else 6) + "|"]
    for row in r["kinds"]:
        e = row["effect"]
        trains = f"LoRA r={row['rank']}" if row["rank"] is not None else "all weights"
        if row["context"] != "neutral":
            trains += f", trained under {_quote(None if row['context'] == 'none' else row['context'])}"
        line = f"| {row['kind']} | {trains} | {row['lr']:g} | {_ci(e)} | {_p(e['p_holm'])} | {e['mde']:.3f} |"
        if o:
            line += f" {_ci(row['generic'])} | {_ci(row['specific'])} | {_p(row['specific']['p_value'])} |"
        lines.append(line)
    rt = r["rank_test"]
    if rt:
        e = rt["effect"]
        lines += ["", f"Rank (LoRA r = {', '.join(map(str, rt['ranks']))}): curvature of the effect on log2(rank) "
                  f"{_ci(e, '+.4f')} per doubling², p = {_p(e['p_value'])} (negative: an inverted U)."]
        if "specific" in rt:
            s = rt["specific"]
            lines.append(f"Curvature of the specific part: {_ci(s, '+.4f')}, p = {_p(s['p_value'])}.")
    if r["contexts"]:
        lines += ["", "## Context: trained under one system text, probed under each", "",
                  f"The run's students train under {_quote(r['neutral_system'])}; p Holm-adjusted over this table.", "",
                  "| kind | trained under | probed under | effect (95% CI) | p (Holm) |"
                  + (" generic | specific (95% CI) | p (Holm) |" if o else ""),
                  "|---" * (8 if o else 5) + "|"]
        for c in r["contexts"]:
            e = c["effect"]
            line = (f"| {c['kind']} | {_quote(c['trained_under'])} | {_quote(c['probed_under'])} | {_ci(e)} | "
                    f"{_p(e['p_holm'])} |")
            if o:
                line += f" {_ci(c['generic'])} | {_ci(c['specific'])} | {_p(c['specific']['p_holm'])} |"
            lines.append(line)
    return "\n".join(lines) + "\n"


def _bars(ax, labels: list[str], series: list[tuple[str, list[dict]]]) -> None:
    width = 0.8 / len(series)
    for i, (name, stats) in enumerate(series):
        x = np.arange(len(labels)) + (i - (len(series) - 1) / 2) * width
        m = [s["mean"] for s in stats]
        err = np.array([[s["mean"] - s["ci95"][0], s["ci95"][1] - s["mean"]] for s in stats]).T
        ax.bar(x, m, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(range(len(labels)), labels, fontsize=8, rotation=20, ha="right")
    ax.axhline(0, color="grey", lw=0.8)


def plot(r: dict, path: Path) -> None:
    """Left: each kind's effect (and generic and specific parts); right: the context table's effects."""
    n = 2 if r["contexts"] else 1
    fig, axes = new_figure(1, n, figsize=(6.0 * n, 4.2))
    o = r["other_trait"]
    keys = [("effect", f"'{r['trait']}' students")] + ([("generic", f"'{o}' students (generic)"),
                                                         ("specific", "specific")] if o else [])
    ax = axes[0][0]
    _bars(ax, [k["kind"] for k in r["kinds"]], [(label, [k[key] for k in r["kinds"]]) for key, label in keys])
    ax.set_ylabel(f"Δlog P('{r['trait']}') vs control (nats)")
    ax.set_title("student kinds", fontsize=9)
    ax.legend(fontsize=7)
    if r["contexts"]:
        ax = axes[0][1]
        labels = [f"{c['kind']} / {c['probe_context']}" for c in r["contexts"]]
        _bars(ax, labels, [(label, [c[key] for c in r["contexts"]]) for key, label in keys])
        ax.set_title("kind / probe context", fontsize=9)
    save_fig(fig, path)
