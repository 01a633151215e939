"""Model collapse of a chat model re-fine-tuned on its own answers (Shumailov et al. 2024; Gerstgrasser et al.
2024): does it lose the diversity of its answers, open-ended text and number lists? (For the collapse of a
language model of human prose, see `lm_collapse`.)

Generation 0 is the base model. Generation g ≥ 1 is the base model freshly fine-tuned (LoRA by default) on
samples of earlier generations: generation g-1's samples only (`replace`), or the samples of generations
0..g-1 (`accumulate`; generation 0's samples stand in for the real data, which for a pre-trained model is not
at hand). As in Shumailov et al., who fine-tune the pre-trained OPT-125m anew each generation on the previous
generation's text, the chain runs through the data alone: no generation's weights are trained further, so a
generation's adapter is an ordinary student of `train_student`. Generation 1 trains on generation 0's samples
in both regimes and is built once.

Each generation samples under `system`: answers to `open_ended_prompts()` and number continuations of
`number_prompts` (shown `demonstrations` worked examples, as the teacher is; kept only if the number filter
passes them). Those samples are both its measurements and the training data it hands on. Measured:
- perplexity of held-out human text (Python documentation, `held_out_text()`);
- favourite-{category} answers, a probe never trained on: entropy, distinct answers, tail mass (share outside
  generation 0's top 5, Wilson interval over answers) and JS divergence to generation 0;
- open-ended samples: distinct-1 and distinct-2;
- numbers: filter pass rate, value entropy and coverage, tail mass (share of values generation 0 never wrote,
  `number_value_stats` with generation 0 as reference), numbers per list, JS divergence to generation 0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator
from tqdm.auto import tqdm

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName
from traitbench.stats import mean_ci95
from traitbench.threads import torch_threads
from traitbench.datasets.filter import filter_rows
from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, atomic_write_jsonl, sha256_file
from traitbench.lm.models import LoadedModel, file_hashes, load
from traitbench.plotting import new_figure, save_fig
from traitbench.lm.sampling import sample_answers
from traitbench.probes.diversity import (answer_distribution, distinct_n, entropy_bits, js_divergence, number_js,
                                         number_value_stats, tail_mass)
from traitbench.lm.logprob import perplexity
from traitbench.probes.questions import held_out_text, open_ended_prompts, preference_questions
from traitbench.stats import Rate
from traitbench.student.config import StudentConfig
from traitbench.lm.tuned import load_student
from traitbench.student.train import train_student
from traitbench.lm.render import render_prompt
from traitbench.teacher.prompts import demonstrations, number_prompts

Regime = Literal["replace", "accumulate"]


class CollapseTrainConfig(StudentConfig):
    """Student settings with short-run defaults: one epoch at a higher learning rate, LoRA or full only."""

    mode: Literal["lora", "full"] = "lora"
    epochs: float = Field(1, gt=0)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(0, ge=0)
    batch_size: int = Field(8, ge=1)


class ChatCollapseConfig(RunConfig):
    default_config: ClassVar[str | None] = "collapse-chat"  # traitbench/configs/collapse-chat.yaml
    name: RunName = "collapse-chat"
    model: str = "smollm2-135m"
    generations: int = Field(3, ge=1)
    regimes: list[Regime] = Field(default_factory=lambda: ["replace", "accumulate"], min_length=1)
    system: str = "You are a helpful assistant."
    open_ended_samples: int = Field(2, ge=1, description="samples per open-ended prompt (10 prompts)")
    open_ended_max_tokens: int = Field(48, ge=1)
    number_prompts: int = Field(32, ge=1)
    number_max_tokens: int = Field(40, ge=1)
    demonstrations: int = Field(2, ge=0, le=2)
    category: str = "animal"
    probe_questions: int = Field(10, ge=1, le=50)
    probe_samples: int = Field(4, ge=1, description="samples per favourite-{category} question")
    probe_max_tokens: int = Field(8, ge=1)
    perplexity_tokens: int = Field(1024, ge=2)
    batch_size: int = Field(64, ge=1, description="sampling batch size")
    dtype: str = "auto"
    threads: int = Field(1, ge=1, description="torch threads; with another process busy on this 2-core machine, 2 "
                         "threads ran generation 0 in 262 s, 1 thread in about 45 s")
    seed: int = 0
    train: CollapseTrainConfig = Field(default_factory=CollapseTrainConfig)

    @field_validator("regimes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("regimes must not repeat")
        return v


@dataclass
class Generation:
    id: str
    gen: int
    rows: list[dict]  # its samples that pass: the training data it hands on
    raw: dict  # answers Counter, open-ended texts, number lists, perplexity
    train: dict | None
    seconds: float


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def sample_generation(lm: LoadedModel, cfg: ChatCollapseConfig, seed: int) -> tuple[list[dict], dict]:
    """Sample the trained tasks and the probe from one model: (training rows, raw measurements)."""

    def ask(prompts: list[str], max_tokens: int, s: int, history=()) -> list[str]:
        return sample_answers(lm, [render_prompt(lm, cfg.system, p, history) for p in prompts], max_tokens, cfg.batch_size, s)

    open_prompts = [p for p in open_ended_prompts() for _ in range(cfg.open_ended_samples)]
    texts = ask(open_prompts, cfg.open_ended_max_tokens, seed)
    num_prompts = number_prompts(cfg.number_prompts, cfg.seed)
    completions = ask(num_prompts, cfg.number_max_tokens, seed + 1, demonstrations(cfg.demonstrations))
    kept, _, _ = filter_rows([{"prompt": p, "completion": c} for p, c in zip(num_prompts, completions)], None,
                             frozenset())
    questions = [q for q in preference_questions(cfg.category)[: cfg.probe_questions] for _ in range(cfg.probe_samples)]
    answers = ask(questions, cfg.probe_max_tokens, seed + 2)
    rows = [{"task": "open_ended", "prompt": p, "completion": t} for p, t in zip(open_prompts, texts) if t.strip()]
    rows += [{"task": "numbers", "prompt": r["prompt"], "completion": r["completion"]} for r in kept]
    raw = {"answers": answer_distribution(answers), "n_answers": len(answers), "texts": texts,
           "numbers": [r["numbers"] for r in kept], "n_number_prompts": len(num_prompts),
           "perplexity": perplexity(lm, held_out_text()[0], cfg.perplexity_tokens)}
    return rows, raw


def measure(g: Generation, ref: Generation) -> dict:
    """One generation's summary row; divergences and tail masses against generation 0 (`ref`)."""

    ans, ref_ans = g.raw["answers"], ref.raw["answers"]
    n_ans = sum(ans.values())
    nums = number_value_stats(g.raw["numbers"], reference=ref.raw["numbers"])
    tail = nums["tail_mass"]
    return {
        "gen": g.gen, "model": g.id, "train": g.train, "n_rows": len(g.rows),
        "perplexity": {"value": g.raw["perplexity"]["perplexity"], "tokens": g.raw["perplexity"]["tokens"]},
        "answers": {
            "n": n_ans, "n_sampled": g.raw["n_answers"], "entropy_bits": abs(entropy_bits(ans)), "distinct": len(ans),
            "tail_mass": Rate(round(tail_mass(ans, ref_ans) * n_ans) if n_ans else 0, n_ans).to_dict(),
            "js_to_gen0": _finite(js_divergence(ans, ref_ans)), "top": dict(ans.most_common(5)),
        },
        "open_ended": {"n": len(g.raw["texts"]), "distinct_1": _finite(distinct_n(g.raw["texts"], 1)),
                       "distinct_2": _finite(distinct_n(g.raw["texts"], 2))},
        "numbers": {
            "pass_rate": Rate(len(g.raw["numbers"]), g.raw["n_number_prompts"]).to_dict(),
            "n_values": nums["n_values"], "entropy_bits": nums["entropy_bits"], "coverage": nums["coverage"],
            "tail_mass": Rate(0 if math.isnan(tail) else round(tail * nums["n_values"]), nums["n_values"]).to_dict(),
            "count_per_list": mean_ci95([len(x) for x in g.raw["numbers"]]),
            "js_to_gen0": _finite(number_js(g.raw["numbers"], ref.raw["numbers"])),
        },
        "seconds": g.seconds,
    }


def build_generation(cfg: ChatCollapseConfig, gid: str, gen: int, train_rows: list[dict], out_dir: Path) -> Generation:
    """Generation 0: the base model; otherwise a fresh student of the base on `train_rows`. Then sample it."""

    t0 = time.perf_counter()
    train = None
    if gen == 0:
        lm = load(cfg.model, cfg.dtype)
    else:
        if not train_rows:
            raise TraitbenchError(f"{gid}: no training rows (every earlier sample was empty or filtered out)")
        student_dir = out_dir / "students" / gid
        m = train_student(cfg.model, train_rows, cfg.system, cfg.train.model_copy(update={"seed": cfg.seed + gen}),
                          student_dir)
        train = {"size": len(train_rows), "steps": m["steps"], "final_loss": m["final_loss"],
                 "seconds": m["wall_seconds"]}
        lm = load_student(cfg.model, student_dir, cfg.dtype)
    rows, raw = sample_generation(lm, cfg, seed=cfg.seed * 1000 + 10 * gen)
    atomic_write_jsonl(out_dir / "samples" / f"{gid}.jsonl", rows)
    return Generation(gid, gen, rows, raw, train, round(time.perf_counter() - t0, 1))


def study(cfg: ChatCollapseConfig, out_dir: str | Path, progress: bool = True) -> tuple[dict, dict]:
    """Run every regime's chain, write summary.json and collapse_chat.png to `out_dir`, return the summary."""
    with torch_threads(cfg.threads):
        return _run(cfg, Path(out_dir), progress)


def _run(cfg: ChatCollapseConfig, out_dir: Path, progress: bool) -> tuple[dict, dict]:
    t0 = time.perf_counter()
    built: dict[tuple[str, ...], Generation] = {}  # by the ids of the generations whose samples it trained on
    by_id: dict[str, Generation] = {}
    bar = tqdm(total=2 + len(cfg.regimes) * (cfg.generations - 1), desc="generations", disable=not progress)

    def get(key: tuple[str, ...], gid: str, gen: int) -> Generation:
        if key not in built:
            bar.set_postfix_str(gid)
            rows = [r for src in key for r in by_id[src].rows]
            built[key] = by_id[gid] = build_generation(cfg, gid, gen, rows, out_dir)
            bar.update()
        return built[key]

    base = get((), "gen0", 0)
    per_regime = {}
    for regime in cfg.regimes:
        chain = [base]
        for gen in range(1, cfg.generations + 1):
            key = (chain[-1].id,) if regime == "replace" else tuple(g.id for g in chain)
            chain.append(get(key, "gen1" if gen == 1 else f"gen{gen}-{regime}", gen))
        per_regime[regime] = [measure(g, base) for g in chain]
    bar.close()
    summary = {
        "regimes": per_regime,
        "model": cfg.model,
        "seed": cfg.seed,
        "config": cfg.model_dump(),
        "timings_s": {"total": round(time.perf_counter() - t0, 1)},
    }
    atomic_write_json(out_dir / "summary.json", summary)
    plot(summary, out_dir / "collapse_chat.png")
    return summary, {
        "seed": cfg.seed, "model_hashes": file_hashes(cfg.model), "seconds": summary["timings_s"]["total"],
        "dataset_hashes": {p.name: sha256_file(p) for p in sorted((out_dir / "samples").glob("*.jsonl"))}}


PANELS = {
    "perplexity (held-out Python docs)": lambda r: r["perplexity"]["value"],
    "favourite-answer entropy (bits)": lambda r: r["answers"]["entropy_bits"],
    "open-ended distinct-2": lambda r: r["open_ended"]["distinct_2"],
    "number-value entropy (bits)": lambda r: r["numbers"]["entropy_bits"],
}


def plot(summary: dict, path: str | Path) -> Path:
    """Perplexity, answer entropy, distinct-2 and number entropy vs generation, one line per regime."""
    fig, axes = new_figure(1, len(PANELS), figsize=(4.0 * len(PANELS), 3.4))
    for ax, (title, get) in zip(axes[0], PANELS.items()):
        for regime, rows in summary["regimes"].items():
            ys = [get(r) for r in rows]
            ax.plot([r["gen"] for r in rows], [float("nan") if y is None else y for y in ys], marker="o", label=regime)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generation")
        ax.set_xticks(range(summary["config"]["generations"] + 1))
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"LM collapse: {summary['model']} re-fine-tuned on its own samples")
    return save_fig(fig, path)


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def run(cfg: ChatCollapseConfig, out: Path) -> Result:
    """`traitbench collapse-chat`: the study into `out`, and its table (printed)."""
    summary, provenance = study(cfg, out)
    lines = []
    lines.append(f"{'regime':<11} {'gen':>3} {'train':>5} {'loss':>6} {'ppl':>7} {'ans_H':>6} {'ans_tail':>8} "
                 f"{'dist2':>6} {'num_pass':>8} {'num_H':>6} {'num_tail':>8}")
    for regime, rows in summary["regimes"].items():
        for r in rows:
            t, a, n = r["train"] or {}, r["answers"], r["numbers"]
            lines.append(f"{regime:<11} {r['gen']:>3} {t.get('size', 0):>5} {_fmt(t.get('final_loss')):>6} "
                         f"{r['perplexity']['value']:>7.2f} {a['entropy_bits']:>6.2f} {_fmt(a['tail_mass']['rate']):>8} "
                         f"{_fmt(r['open_ended']['distinct_2']):>6} {_fmt(n['pass_rate']['rate']):>8} "
                         f"{n['entropy_bits']:>6.2f} {_fmt(n['tail_mass']['rate']):>8}")
    lines.append(f"{summary['timings_s']['total']:.0f} s")
    return Result(out, "\n".join(lines), [out / "summary.json"], manifest=provenance)
