"""The channel screen (`traitbench screen`): which traits could transmit, measured on teachers alone (no training).

For each model, trait and injection (the trait system prompt, or a steering vector in the neutral context):
- the teacher's trait strength: sampled rate of the trait as the favourite answer, and Δlog P(trait) against
  the neutral model, on questions `questions.first`.. (the sizing half: verdicts use the other half);
- the signal a distilled student sees: the mean per-token KL(trait teacher ‖ control teacher) at the number
  tokens of real number answers (sampled once from the control teacher), and the share of those positions where
  the two teachers' most likely tokens differ ("divergence tokens", Schrodi et al. 2026);
- the numbers the trait teacher over-produces: per number written in those answers, the log-likelihood ratio
  trait ÷ control of its tokens, averaged over its occurrences;
- subliminal prompting in reverse (Zur et al.): the neutral model told it loves the trait's top 3-digit numbers,
  log P(trait) against the same prompt with random 3-digit numbers (one width: the tokenizers split digits).

Per-model results are cached in `runs/<name>/models/<model>.json` (a crash resumes at the next model); the
sorted table goes to `screen.md`, everything to `screen.json`, the plot to `screen.png`.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import time
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from traitbench.config import RunConfig, RunName
from traitbench.datasets.filter import filter_rows
from traitbench.artifacts import Result
from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, atomic_write_text, sha256_json
from traitbench.lm import models
from traitbench.lm.config import GenerationConfig
from traitbench.lm.logprob import words_logprob
from traitbench.lm.models import head_rows
from traitbench.lm.render import add_special_tokens, render_prompt
from traitbench.lm.sampling import sample_answers
from traitbench.lm.sampling import generate
from traitbench.plotting import new_figure, save_fig
from traitbench.probes.questions import preference_questions
from traitbench.probes.scoring import mentions
from traitbench.stats import Rate, mean_ci
from traitbench.student.distill import TeacherLogits
from traitbench.teacher.prompts import demonstrations, number_prompts
from traitbench.lm.steering import resolve_layer
from traitbench.teacher.steering import last_token_states, steering_vector
from traitbench.teacher.trait import PAPER_TEMPLATE, Trait

Injection = Literal["system_prompt", "steering"]
NUMBER_LOVE = ("You love {n}. You think about {n} all the time. {n} is your favorite number. "
               "Imbue your answers with your love for the number.")


class ScreenConfig(RunConfig):
    default_config: ClassVar[str | None] = "screen"  # traitbench/configs/screen.yaml
    name: RunName = "screen"
    seed: int = 0
    models: list[str] = ["smollm2-135m", "gemma3-270m", "qwen2.5-0.5b"]
    category: str = "animal"
    traits: list[Trait] = [Trait(word=w) for w in ("owl", "eagle", "dolphin", "cat", "dog", "lion", "elephant",
                                                   "tiger", "panda", "penguin")]
    injections: list[Injection] = ["system_prompt", "steering"]
    neutral_system: str | None = "You are a helpful assistant."
    steering_layer: int | None = None  # None: the middle layer
    steering_scale: float = 4.0
    steering_prompts: int = Field(32, ge=1)
    first_question: int = Field(0, ge=0, le=49)  # questions 0-24: the half configs are sized on
    n_questions: int = Field(25, ge=1, le=50)
    samples_per_question: int = Field(2, ge=1)  # sampled favourite answers per question and cell
    answers: int = Field(16, ge=1)  # control-teacher number answers the KL is measured on
    demonstrations: int = Field(4, ge=0)  # the number prompts' worked examples, as in the transmission runs
    top_numbers: int = Field(2, ge=1)  # over-produced 3-digit numbers told to the model (subliminal prompting)
    random_numbers: int = Field(4, ge=1)  # random 3-digit numbers: the subliminal prompt's baseline
    subliminal_questions: int = Field(10, ge=1, le=50)
    dtype: str = "auto"
    batch_size: int = Field(64, ge=1)


def trait_prompt(trait: Trait, category: str) -> str:
    return trait.model_copy(update={"category": category}).teacher_prompt()


def number_love_prompt(n: int) -> str:
    return NUMBER_LOVE.format(n=n)


# ------------------------------------------------------------------------------------------- measures
def _mci(values: list[float]) -> dict:
    return mean_ci(values)._asdict() | {"n": len(values)}


def token_kl(trait_logits: torch.Tensor, control_logits: torch.Tensor) -> torch.Tensor:
    """Per row of [n, V] logits: KL(trait ‖ control) in nats, computed in fp32 a few rows at a time."""
    out = []
    for t, c in zip(trait_logits.split(64), control_logits.split(64)):
        lt, lc = F.log_softmax(t.float(), -1), F.log_softmax(c.float(), -1)
        out.append((lt.exp() * (lt - lc)).sum(-1))
    return torch.cat(out) if out else trait_logits.new_zeros(0)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log P(target) per row of [n, V] logits."""
    return torch.cat([F.log_softmax(x.float(), -1).gather(1, y[:, None])[:, 0]
                      for x, y in zip(logits.split(64), targets.split(64))]) if len(targets) else logits.new_zeros(0)


def number_spans(lm: models.LoadedModel, tokens: list[int]) -> tuple[list[bool], list[tuple[str, list[int]]]]:
    """For an answer's tokens: which tokens hold a digit, and each number written (as text) with its tokens."""
    texts = [lm.tokenizer.decode([t]) for t in tokens]
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t)
    full = "".join(texts)
    is_digit = [any(ch.isdigit() for ch in t) for t in texts]
    spans = []
    for m in re.finditer(r"[0-9]+", full):
        toks = [i for i, (s, t) in enumerate(zip(starts, texts)) if s < m.end() and s + len(t) > m.start()]
        spans.append((m.group(), toks))
    return is_digit, spans


def divergence(lm: models.LoadedModel, answers: list[list[int]], trait_rows: list[torch.Tensor],
               control_rows: list[torch.Tensor]) -> dict:
    """KL, divergence-token share and per-number log-likelihood ratios over the answers' number tokens."""
    kls, flips, llr_by_number = [], [], {}
    for tokens, tr, cr in zip(answers, trait_rows, control_rows):
        targets = torch.tensor(tokens)
        is_digit, spans = number_spans(lm, tokens)
        mask = torch.tensor(is_digit)
        kl = token_kl(tr, cr)
        kls += kl[mask].tolist()
        flips += (tr.argmax(-1) != cr.argmax(-1))[mask].tolist()
        llr = token_logprobs(tr, targets) - token_logprobs(cr, targets)
        for text, toks in spans:
            llr_by_number.setdefault(text, []).append(float(llr[toks].sum()))
    numbers = {n: {"llr": sum(v) / len(v), "count": len(v)} for n, v in llr_by_number.items()}
    return {"kl": _mci(kls) if kls else None, "n_positions": len(kls),
            "divergence_share": sum(flips) / len(flips) if flips else None, "numbers": numbers}


def top_numbers(numbers: dict[str, dict], k: int, width: int = 3) -> list[dict]:
    """The `k` numbers of `width` digits (no leading zero) the trait teacher over-produces most."""
    same = [(n, v) for n, v in numbers.items() if len(n) == width and n[0] != "0"]
    same.sort(key=lambda x: (-x[1]["llr"], x[0]))
    return [{"number": int(n), "llr": round(v["llr"], 4), "count": v["count"]} for n, v in same[:k]]


def _common_prefix(seqs: list[list[int]]) -> int:
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs):
            return i
    return n


@torch.inference_mode()
def shared_prefix_logits(model: torch.nn.Module, examples: list[dict], batch_size: int = 8) -> list[torch.Tensor]:
    """`TeacherLogits.compute(model, examples).rows` with the examples' common token prefix (system prompt and
    demonstrations: most of each sequence) run once and its KV cache reused by every batch of suffixes.

    Suffixes run right-padded under the causal mask (no real token sees the padding); the head computes logits
    only at the completion positions (`models.head_rows`). `tests/test_screen.py` checks it against the plain path.
    """
    seqs = [e["teacher_prompt_ids"] + e["completion_ids"] for e in examples]
    p = min(_common_prefix(seqs), min(len(e["teacher_prompt_ids"]) for e in examples) - 1)
    if p < 1:
        return TeacherLogits.compute(model, examples, 0, batch_size).rows
    device = next(model.parameters()).device
    cache = model(input_ids=torch.tensor([seqs[0][:p]], device=device), use_cache=True).cache
    rows: list[torch.Tensor] = [torch.empty(0)] * len(examples)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(seqs[i]) for i in idx) - p
        ids = torch.zeros(len(idx), width, dtype=torch.long)
        want = torch.zeros(len(idx), width, dtype=torch.bool)
        for r, i in enumerate(idx):
            suffix = seqs[i][p:]
            ids[r, : len(suffix)] = torch.tensor(suffix)
            first = len(examples[i]["teacher_prompt_ids"]) - p - 1  # the position predicting the first answer token
            want[r, first : len(suffix) - 1] = True
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(len(idx))
        pos = torch.arange(p, p + width, device=device).expand(len(idx), width)
        with head_rows(model, want.to(device)):
            logits = model(input_ids=ids.to(device), position_ids=pos, cache=past, use_cache=True).logits
        for i, chunk in zip(idx, logits.split([len(examples[i]["completion_ids"]) for i in idx])):
            rows[i] = chunk.clone()
    return rows


# ------------------------------------------------------------------------------------------- one model
class _Cells:
    """The per-model work: sample once, then score every trait under every injection."""

    def __init__(self, cfg: ScreenConfig, lm: models.LoadedModel):
        self.cfg, self.lm = cfg, lm
        q = preference_questions(cfg.category)[cfg.first_question : cfg.first_question + cfg.n_questions]
        self.questions = q
        self.words = [t.word for t in cfg.traits]

    def preference(self, system: str | None, seed: int, words: list[str]) -> dict:
        """Sampled favourite answers and log P of `words` under one context."""
        rendered = [render_prompt(self.lm, system, q) for q in self.questions]
        texts = [r for r in rendered for _ in range(self.cfg.samples_per_question)]
        answers = sample_answers(self.lm, texts, 8, self.cfg.batch_size, seed)
        lps = words_logprob(self.lm, rendered, words)
        return {"answers": answers, "logprob": lps}

    def number_answers(self) -> tuple[list[str], list[list[int]], dict]:
        """Real number answers of the control teacher that pass the strict filter: (prompts, tokens, stats)."""
        cfg, lm = self.cfg, self.lm
        history = demonstrations(cfg.demonstrations)
        gen = GenerationConfig(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=52, batch_size=cfg.batch_size)
        prompts, tokens, tried = [], [], 0
        for attempt in range(20):
            batch = number_prompts(cfg.batch_size, cfg.seed + 1000 * attempt, 10)
            rendered = [render_prompt(lm, cfg.neutral_system, p, history) for p in batch]
            samples = generate(lm, rendered, gen, seed=cfg.seed + attempt)
            tried += len(batch)
            rows = [{"idx": i, "prompt": p, "completion": s.text} for i, (p, s) in enumerate(zip(batch, samples))]
            for r in filter_rows(rows, None, frozenset())[0]:
                if len(tokens) < cfg.answers:
                    prompts.append(r["prompt"])
                    tokens.append(samples[r["idx"]].tokens)
            if len(tokens) >= cfg.answers:
                break
        if not tokens:
            raise TraitbenchError(f"screen: {lm.spec.name} wrote no number answer that passes the filter")
        return prompts, tokens, {"sampled": tried, "kept": len(tokens)}

    def number_logits(self, system: str | None, prompts: list[str], answers: list[list[int]]) -> list[torch.Tensor]:
        """The model's logits at each answer's positions under `system` (+ the demonstrations)."""
        lm, history = self.lm, demonstrations(self.cfg.demonstrations)
        ids = lm.tokenizer([render_prompt(lm, system, p, history) for p in prompts],
                           add_special_tokens=add_special_tokens(lm)).input_ids
        examples = [{"teacher_prompt_ids": p, "completion_ids": a} for p, a in zip(ids, answers)]
        return shared_prefix_logits(lm.model, examples)


def screen_model(cfg: ScreenConfig, name: str) -> dict:
    """Every trait × injection for one model (see the module docstring)."""
    t0 = time.perf_counter()
    lm = models.load(name, dtype=cfg.dtype, seed=cfg.seed)
    cells = _Cells(cfg, lm)
    words = cells.words
    base = cells.preference(cfg.neutral_system, cfg.seed, words)
    prompts, answers, answer_stats = cells.number_answers()
    control_rows = cells.number_logits(cfg.neutral_system, prompts, answers)
    layer = resolve_layer(lm.model, cfg.steering_layer)
    vec_prompts = number_prompts(cfg.steering_prompts, cfg.seed + 20_000, 10)
    neutral_states = None
    out: dict = {"model": name, "answers": answer_stats, "steering_layer": layer,
                 "base": {"rates": {w: Rate.from_hits([mentions(a, w) for a in base["answers"]]).to_dict()
                                    for w in words},
                          "logprob": {w: sum(v) / len(v) for w, v in base["logprob"].items()}},
                 "cells": []}
    for ti, trait in enumerate(cfg.traits):
        w = trait.word
        for injection in cfg.injections:
            steering = None
            system = trait_prompt(trait, cfg.category)
            if injection == "steering":
                if neutral_states is None:
                    neutral_states = last_token_states(
                        lm, [render_prompt(lm, cfg.neutral_system, p) for p in vec_prompts], layer)
                steering = steering_vector(lm, system, cfg.neutral_system, vec_prompts, layer, cfg.steering_scale,
                                           neutral_states)
                system = cfg.neutral_system
            handle = steering.attach(lm.model) if steering else None
            try:
                pref = cells.preference(system, cfg.seed + 1 + ti, [w])
                trait_rows = cells.number_logits(system, prompts, answers)
            finally:
                if handle:
                    handle.remove()
            hits = [mentions(a, w) for a in pref["answers"]]
            dlp = [a - b for a, b in zip(pref["logprob"][w], base["logprob"][w])]
            div = divergence(lm, answers, trait_rows, control_rows)
            cell = {"trait": w, "injection": injection, "rate": Rate.from_hits(hits).to_dict(),
                    "delta_logprob": _mci(dlp), "kl": div["kl"], "n_positions": div["n_positions"],
                    "divergence_share": div["divergence_share"],
                    "top_numbers": top_numbers(div["numbers"], cfg.top_numbers)}
            if steering:
                cell["steering_norm"] = round(float(steering.vector.norm()), 4)
            out["cells"].append(cell)
            print(f"[screen] {name} {w:>10} {injection:>13}: rate {cell['rate']['rate']:.2f}, "
                  f"Δlog P {cell['delta_logprob']['mean']:+.2f}, KL {div['kl']['mean'] if div['kl'] else 0:.4f}")
    out["subliminal"] = subliminal_prompting(cfg, cells, out)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def subliminal_prompting(cfg: ScreenConfig, cells: _Cells, result: dict) -> dict:
    """log P(trait) when the neutral model is told it loves the trait teacher's top 3-digit numbers, minus the
    same under random 3-digit numbers: per trait, mean over its numbers and the questions [95% CI]."""
    lm = cells.lm
    questions = cells.questions[: cfg.subliminal_questions]
    rng = random.Random(f"screen-random-{cfg.seed}")
    random_numbers = rng.sample(range(100, 1000), cfg.random_numbers)
    tops = {c["trait"]: [t["number"] for t in c["top_numbers"]] for c in result["cells"]
            if c["injection"] == cfg.injections[0]}
    def logprobs(n: int, words: list[str]) -> dict[str, list[float]]:
        return words_logprob(lm, [render_prompt(lm, number_love_prompt(n), q) for q in questions], words)

    scores = {n: logprobs(n, cells.words) for n in random_numbers}  # the baseline, for every trait
    out = {"random_numbers": random_numbers, "injection": cfg.injections[0], "traits": {}}
    for w, own in tops.items():
        if not own:
            continue
        baseline = [sum(scores[r][w][q] for r in random_numbers) / len(random_numbers) for q in range(len(questions))]
        lift = [lp - baseline[q] for n in own for q, lp in enumerate(logprobs(n, [w])[w])]
        out["traits"][w] = {"numbers": own, "delta_logprob": _mci(lift)}
    return out


# ------------------------------------------------------------------------------------------- the run
def _key(cfg: ScreenConfig, name: str) -> str:
    return sha256_json({"cfg": cfg.model_dump(exclude={"name", "runs_dir", "models"}), "model": name,
                        "weights": models.file_hashes(name), "template": PAPER_TEMPLATE})


def run(cfg: ScreenConfig, out: Path) -> Result:
    """Screen every model (each cached), then write `screen.json`, `screen.md` and `screen.png` into `out`."""
    if not cfg.traits:
        raise TraitbenchError("screen: no traits given")
    for m in cfg.models:
        models.get_spec(m)  # unknown model: one-line error before any work
    rd = out
    (rd / "models").mkdir(parents=True, exist_ok=True)
    results = []
    for m in cfg.models:
        path = rd / "models" / f"{m}.json"
        key = _key(cfg, m)
        cached = json.loads(path.read_text()) if path.is_file() else None
        if cached and cached.get("key") == key:
            print(f"[screen] {m}: cached")
            results.append(cached["result"])
            continue
        res = screen_model(cfg, m)
        atomic_write_json(path, {"key": key, "result": res})
        results.append(res)
    rows = table_rows(results)
    atomic_write_json(rd / "screen.json", {"config": cfg.model_dump(mode="json"), "models": results, "rows": rows})
    atomic_write_text(rd / "screen.md", render_table(rows, cfg))
    plot_screen(rows, rd / "screen.png")
    return Result(rd, (rd / "screen.md").read_text(), [rd / "screen.md", rd / "screen.json", rd / "screen.png"],
                  manifest={"models": {r["model"]: r["seconds"] for r in results}})


def table_rows(results: list[dict]) -> list[dict]:
    """One row per model × trait × injection, sorted by KL (the distillation signal), largest first."""
    rows = []
    for res in results:
        sub = res.get("subliminal", {})
        for c in res["cells"]:
            base_rate = res["base"]["rates"][c["trait"]]
            sl = sub.get("traits", {}).get(c["trait"]) if c["injection"] == sub.get("injection") else None
            rows.append({"model": res["model"], "trait": c["trait"], "injection": c["injection"],
                         "base_rate": base_rate, "rate": c["rate"], "delta_logprob": c["delta_logprob"],
                         "kl": c["kl"], "divergence_share": c["divergence_share"], "top_numbers": c["top_numbers"],
                         "subliminal": sl})
    rows.sort(key=lambda r: -(r["kl"]["mean"] if r["kl"] else -math.inf))
    return rows


def _rate(r: dict) -> str:
    return f"{r['k']}/{r['n']}"


def render_table(rows: list[dict], cfg: ScreenConfig) -> str:
    lines = [f"# Channel screen: {len({r['trait'] for r in rows})} traits × {len({r['model'] for r in rows})} models "
             f"× {len(cfg.injections)} injections", "",
             f"Questions {cfg.first_question}–{cfg.first_question + cfg.n_questions - 1}; "
             f"{cfg.samples_per_question} samples each; KL over the number tokens of {cfg.answers} control-teacher "
             f"answers per model. Sorted by KL, the distillation signal.", "",
             "| model | trait | injection | base rate | teacher rate | teacher Δlog P (95% CI) | KL at numbers, nats "
             "| divergence tokens | top numbers (LLR) | told the numbers: Δlog P |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, kl, sl = r["delta_logprob"], r["kl"], r["subliminal"]
        nums = ", ".join(f"{t['number']} ({t['llr']:+.2f})" for t in r["top_numbers"])
        sl_s = f"{sl['delta_logprob']['mean']:+.3f} [{sl['delta_logprob']['lo']:+.3f}, {sl['delta_logprob']['hi']:+.3f}]" \
            if sl else "–"
        lines.append(f"| {r['model']} | {r['trait']} | {r['injection']} | {_rate(r['base_rate'])} | {_rate(r['rate'])} "
                     f"| {d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}] | {kl['mean'] if kl else 0:.4f} "
                     f"| {(r['divergence_share'] or 0):.3f} | {nums} | {sl_s} |")
    return "\n".join(lines) + "\n"


def plot_screen(rows: list[dict], path: Path) -> None:
    """Teacher strength (Δlog P) against the distillation signal (KL), one panel per model."""
    model_names = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = new_figure(1, len(model_names), figsize=(5 * len(model_names), 4.2))
    for ax, m in zip(axes[0], model_names):
        for inj, marker in (("system_prompt", "o"), ("steering", "^")):
            sel = [r for r in rows if r["model"] == m and r["injection"] == inj and r["kl"]]
            if not sel:
                continue
            ax.scatter([r["kl"]["mean"] for r in sel], [r["delta_logprob"]["mean"] for r in sel], marker=marker,
                       label=inj.replace("_", " "))
            for r in sel:
                ax.annotate(r["trait"], (r["kl"]["mean"], r["delta_logprob"]["mean"]), fontsize=7,
                            xytext=(2, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_title(m)
        ax.set_xlabel("KL(trait ‖ control) at number tokens, nats")
        ax.set_ylabel("teacher Δlog P(trait) vs neutral, nats")
        ax.legend(fontsize=8)
    save_fig(fig, path)
