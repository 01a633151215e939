"""Probe one model with the registered probes (`probes/registry.py`): sampled trait preference (plain and
numbers-prefixed), Δlog P inputs, open-ended diversity, held-out perplexity and (optional) judged misalignment.
Per-sample results go to JSONL; aggregates to `probe.json`."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from traitbench.probes import metrics
from traitbench.io import atomic_write_json, atomic_write_jsonl
from traitbench.lm.logprob import perplexity, words_logprob
from traitbench.lm.models import LoadedModel
from traitbench.lm.render import render_prompt
from traitbench.lm.sampling import sample_answers
from traitbench.probes.config import ProbeConfig
from traitbench.probes.contrastive import contrastive_probe
from traitbench.probes.diversity import answer_distribution, entropy_bits, top1_mass
from traitbench.probes.judge import Judge
from traitbench.probes.misalignment import misalignment_probe
from traitbench.probes.questions import held_out_text, numbers_prefixed, open_ended_prompts, preference_questions
from traitbench.probes.registry import PROBES, SAMPLES
from traitbench.probes.scoring import mentions, normalize_answer
from traitbench.stats import Rate, cluster_bootstrap_rate, mean_ci


@dataclass(frozen=True)
class ProbeContext:
    """What a registered probe runs on: one loaded model in its probe context (`system`), the trait, the settings."""

    lm: LoadedModel
    system: str | None
    trait: str
    category: str
    cfg: ProbeConfig
    seed: int
    judge: Judge | None = None  # the misalignment judge, shared by every probed model (None: loaded when needed)
    aliases: Sequence[str] = ()  # other words that count as naming the trait in sampled answers


def trait_rate(predictions: list, trait: str | None = None) -> dict:
    """The `trait_rate` metric (Wilson 95% CI) of answers naming `trait`, or of match flags, as `Rate.to_dict()`."""
    r = metrics.load("trait_rate").compute(predictions=predictions, trait=trait)
    return Rate(r["k"], r["n"], (r["ci_low"], r["ci_high"])).to_dict()


def probe_questions(lm: LoadedModel, system: str | None, category: str, cfg: ProbeConfig, seed: int,
                    prefixed: bool) -> tuple[list[str], list[str]]:
    """The configured favourite-{category} questions (numbers-prefixed or plain) and their rendered prompts."""
    rng = random.Random(f"probe-prefix-{seed}")
    questions = preference_questions(category)[cfg.first_question : cfg.first_question + cfg.n_questions]
    if prefixed:
        questions = [numbers_prefixed(q, rng) for q in questions]
    return questions, [render_prompt(lm, system, q) for q in questions]


def mentions_trait(text: str, trait: str, aliases: Sequence[str] = ()) -> bool:
    """Whether `text` names the trait word or one of its aliases."""
    return any(mentions(text, w) for w in (trait, *aliases))


def preference(lm: LoadedModel, system: str | None, trait: str, category: str, cfg: ProbeConfig, seed: int,
               prefixed: bool, aliases: Sequence[str] = ()) -> tuple[dict, list[dict], list[str]]:
    """Sampled favourite-{category} answers (a hit names the trait or an alias); returns aggregate, per-sample
    rows and the rendered questions."""
    questions, rendered = probe_questions(lm, system, category, cfg, seed, prefixed)
    texts = [r for r in rendered for _ in range(cfg.samples_per_question)]
    answers = sample_answers(lm, texts, cfg.answer_max_tokens, cfg.batch_size, seed + (1 if prefixed else 0))
    rows, hits_by_q = [], [[] for _ in questions]
    for i, a in enumerate(answers):
        q = i // cfg.samples_per_question
        hit = mentions_trait(a, trait, aliases)
        hits_by_q[q].append(hit)
        rows.append({"variant": "numbers_prefixed" if prefixed else "plain", "question_idx": q,
                     "question": questions[q], "answer": a, "normalized": normalize_answer(a), "hit": hit})
    hits = [h for hs in hits_by_q for h in hs]
    dist = answer_distribution(answers)
    agg = {"rate": trait_rate(hits),
           **({"other_rates": {w: trait_rate(answers, w) for w in cfg.other_words}} if cfg.other_words else {}),
           "rate_question_bootstrap": cluster_bootstrap_rate(hits_by_q, seed=seed).to_dict(),
           "answers": dict(dist.most_common()), "entropy_bits": entropy_bits(dist), "distinct": len(dist),
           "top1_mass": top1_mass(dist)}
    return agg, rows, rendered


def _logprob_entry(logps: list[float]) -> dict:
    m = mean_ci(logps)
    return {"per_question": logps, "mean": m.mean, "ci95": [m.lo, m.hi], "n": len(logps)}


def logprob_entries(lm: LoadedModel, rendered: list[str], trait: str, cfg: ProbeConfig) -> dict:
    """`trait_logprob` (and `other_logprob` for `cfg.other_words`) of one question variant."""
    words = list(dict.fromkeys([trait, *cfg.other_words]))
    lps = words_logprob(lm, rendered, words)
    out = {"trait_logprob": _logprob_entry(lps[trait])}
    if cfg.other_words:
        out["other_logprob"] = {w: _logprob_entry(lps[w]) for w in cfg.other_words}
    return out


def probe_logprob(lm: LoadedModel, system: str | None, trait: str, category: str, cfg: ProbeConfig,
                  out_dir: str | Path, seed: int = 0) -> dict:
    """Only log P(answer = trait) per question and variant (no sampling): the cheap probe of a checkpoint.
    Writes `probe.json` with `{variant: {"trait_logprob": …}}` like `probe_model`."""
    t0 = time.perf_counter()
    result: dict = {"system": system, "trait": trait, "category": category}
    for name in cfg.variants:
        rendered = probe_questions(lm, system, category, cfg, seed, name == "numbers_prefixed")[1]
        result[name] = logprob_entries(lm, rendered, trait, cfg)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(Path(out_dir) / "probe.json", result)
    return result


def _preference_probe(ctx: ProbeContext, prefixed: bool) -> tuple[dict, list[dict]]:
    agg, rows, rendered = preference(ctx.lm, ctx.system, ctx.trait, ctx.category, ctx.cfg, ctx.seed, prefixed,
                                     ctx.aliases)
    agg.update(logprob_entries(ctx.lm, rendered, ctx.trait, ctx.cfg))
    return agg, rows


def plain_preference(ctx: ProbeContext) -> tuple[dict, list[dict]]:
    """The favourite-{category} questions as asked: sampled answers and log P(trait) per question."""
    return _preference_probe(ctx, prefixed=False)


def prefixed_preference(ctx: ProbeContext) -> tuple[dict, list[dict]]:
    """The favourite-{category} questions after a list of random numbers (sampled with seed + 1)."""
    return _preference_probe(ctx, prefixed=True)


def open_ended(ctx: ProbeContext) -> tuple[dict, list[dict]]:
    """Free-form answers to the open-ended prompts (sampled with seed + 2): distinct-n and trait mentions."""
    cfg, prompts = ctx.cfg, open_ended_prompts()
    rendered = [render_prompt(ctx.lm, ctx.system, p) for p in prompts for _ in range(cfg.open_ended_samples)]
    texts = sample_answers(ctx.lm, rendered, cfg.open_ended_max_tokens, cfg.batch_size, ctx.seed + 2)
    rows = [{"variant": "open_ended", "prompt": prompts[i // cfg.open_ended_samples], "answer": t}
            for i, t in enumerate(texts)]
    return {"n": len(texts), **metrics.load("distinct_n").compute(predictions=texts, orders=[1, 2]),
            "trait_mentions": trait_rate([mentions_trait(t, ctx.trait, ctx.aliases) for t in texts])}, rows


def held_out_perplexity(ctx: ProbeContext) -> tuple[dict, list[dict]]:
    """Perplexity on the first `perplexity_tokens` tokens of the held-out text (no rows)."""
    text, source = held_out_text()
    return dict(perplexity(ctx.lm, text, ctx.cfg.perplexity_tokens), source=source), []


def contrastive_misalignment(ctx: ProbeContext) -> tuple[dict, list[dict]]:
    """The contrastive misalignment probe (`probes/contrastive.py`) on the configured half of the triples."""
    c = ctx.cfg.contrastive
    return contrastive_probe(ctx.lm, ctx.system, c.split, ctx.cfg.batch_size, c.triples)


def judged_misalignment(ctx: ProbeContext) -> tuple[dict, list[dict]]:
    """The misalignment probe (`probes/misalignment.py`; sampled with seed + 3)."""
    return misalignment_probe(ctx.lm, ctx.system, ctx.cfg.misalignment, ctx.cfg.batch_size, ctx.seed, ctx.judge)


def probe_model(lm: LoadedModel, system: str | None, trait: str, category: str, cfg: ProbeConfig, out_dir: str | Path,
                seed: int = 0, judge: Judge | None = None, aliases: Sequence[str] = ()) -> dict:
    """Run every enabled registered probe on one loaded model, in the registry's order; writes each one's
    aggregate under its name into `probe.json` and its rows into its JSONL file under `out_dir` (`samples.jsonl`
    always; `misalignment.jsonl` when that probe runs). `judge`: a loaded misalignment judge to reuse across
    models. Sampled answers naming an alias of the trait count as hits; log P is the trait word's."""
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    ctx = ProbeContext(lm, system, trait, category, cfg, seed, judge, aliases)
    result: dict = {"system": system, "trait": trait, "category": category}
    rows: dict[str, list[dict]] = {SAMPLES: []}
    for name, probe in PROBES.items():
        if probe.enabled(cfg):
            result[name], probe_rows = probe.run(ctx)
            rows.setdefault(probe.rows_file, []).extend(probe_rows)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for file, file_rows in rows.items():
        atomic_write_jsonl(out_dir / file, file_rows)
    atomic_write_json(out_dir / "probe.json", result)
    return result
