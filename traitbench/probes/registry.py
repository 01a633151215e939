"""The probes every probed model goes through, registered in one place: `PROBES`, in the order they run.

A probe runs on one loaded model (`run`: given a `probes.run.ProbeContext`, it returns the aggregate that
`probe.json` keeps under the probe's name and the per-sample rows for its `rows_file`) and says how the summary
shows it: `summarize` (this model's aggregate and its base model's) gives keys of the model's entry, `compare` (a
trait student's aggregate and its control student's) its student-vs-control effects, and `figures` its headline
numbers (a number, or an `estimate`: value, 95% CI and n; every rate is one), which summary.json keeps per model
under "figures", the report shows in its probe-figures table and the lm-eval export writes as one task per probe. A new probe is its run function plus one line here.

Run functions are named "module:function" and imported when a probe runs, so the summary, the report and the
export read this registry without importing torch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import import_module
from typing import Callable

from traitbench.probes import metrics
from traitbench.probes.diversity import js_divergence, rare_mass, tail_mass
from traitbench.stats import two_proportion_test

SAMPLES = "samples.jsonl"  # the rows file of every probe that names no other


@dataclass(frozen=True)
class Probe:
    """One probe: when and what it runs, and how the summary shows its aggregate (see the module's docstring)."""

    runner: str  # "module:function": (ProbeContext) -> (aggregate, per-sample rows)
    enabled: Callable[..., bool]  # (ProbeConfig) -> whether the probe runs
    summarize: Callable[[dict, dict | None], dict]  # (aggregate, the base model's or None) -> model-entry keys
    figures: Callable[[dict], dict]  # aggregate -> {figure name: number}
    compare: Callable[[dict, dict], dict] | None = None  # (trait student's, control's aggregate) -> effects
    rows_file: str = SAMPLES

    def run(self, ctx) -> tuple[dict, list[dict]]:
        module, name = self.runner.split(":")
        return getattr(import_module(module), name)(ctx)


def paired_logprob_delta(a: list[float], b: list[float], seed: int = 0) -> dict:
    """Mean per-question difference a − b with a paired bootstrap CI and a paired t-test p-value (the
    `delta_logprob` metric)."""
    r = metrics.load("delta_logprob").compute(predictions=a, references=b, seed=seed)
    return {"delta": r["delta"], "ci95": [r["ci_low"], r["ci_high"]], "n_questions": r["n"], "p_value": r["p_value"]}


def _rate_effect(a: dict, b: dict) -> dict:
    c = two_proportion_test(a["k"], a["n"], b["k"], b["n"])
    return {"diff": c.diff, "ci95": list(c.ci95), "p_value": c.p_value, "test": "Fisher exact (two-sided)",
            "this": f"{a['k']}/{a['n']}", "reference": f"{b['k']}/{b['n']}"}


def disappeared(answers: Counter, ref: Counter, k: int = 10) -> list[str]:
    """The `k` most common reference answers that no longer occur; ties alphabetically (the same list whatever
    the hash seed)."""
    return sorted(set(ref) - set(answers), key=lambda a: (-ref[a], a))[:k]


# ------------------------------------------------------------------------------------ favourite question
def preference_entry(r: dict, b: dict) -> dict:
    """One question variant's rate, Δlog P and answer diversity against the base model's."""
    answers, ref = Counter(r["answers"]), Counter(b["answers"])
    return {
        "rate": r["rate"], "rate_question_bootstrap": r["rate_question_bootstrap"],
        "rate_vs_base": _rate_effect(r["rate"], b["rate"]),
        "trait_logprob": {k: r["trait_logprob"][k] for k in ("mean", "ci95", "n")},
        "delta_logprob_vs_base": paired_logprob_delta(r["trait_logprob"]["per_question"],
                                                      b["trait_logprob"]["per_question"]),
        "diversity": {"entropy_bits": r["entropy_bits"], "base_entropy_bits": b["entropy_bits"],
                      "distinct": r["distinct"], "base_distinct": b["distinct"], "top1_mass": r["top1_mass"],
                      "tail_mass_vs_base_top5": tail_mass(answers, ref), "rare_mass_vs_base": rare_mass(answers, ref),
                      "js_to_base_bits": js_divergence(answers, ref),
                      "disappeared": disappeared(answers, ref)},
        "top_answers": dict(answers.most_common(5)),
    }


def preference_vs_control(r: dict, c: dict) -> dict:
    return {"rate_vs_control": _rate_effect(r["rate"], c["rate"]),
            "delta_logprob_vs_control": paired_logprob_delta(r["trait_logprob"]["per_question"],
                                                             c["trait_logprob"]["per_question"])}


def estimate(value: float | None, ci95: list | None, n: int) -> dict:
    """A headline figure with its 95% CI and n (a bare number is a figure without them)."""
    return {"value": value, "ci95": list(ci95) if ci95 else None, "n": n}


def rate_estimate(rate: dict) -> dict:
    """A `Rate.to_dict()` as a figure: the rate, its Wilson 95% CI, its n."""
    return estimate(rate["rate"], rate["ci95"], rate["n"])


def mean_estimate(mean: dict) -> dict:
    """A mean with its CI (`{"mean", "ci95", "n"}`) as a figure."""
    return estimate(mean["mean"], mean["ci95"], mean["n"])


def preference_figures(r: dict) -> dict:
    return {"trait_rate": rate_estimate(r["rate"]), "trait_logprob": mean_estimate(r["trait_logprob"]),
            "entropy_bits": r["entropy_bits"]}


# --------------------------------------------------------------------------------------------- the others
def open_ended_figures(r: dict) -> dict:
    return {"distinct_1": r["distinct_1"], "distinct_2": r["distinct_2"],
            "trait_mention_rate": rate_estimate(r["trait_mentions"])}


def perplexity_entry(r: dict, b: dict) -> dict:
    return {"perplexity": r["perplexity"], "perplexity_change_vs_base": r["perplexity"] - b["perplexity"]}


def misalignment_entry(m: dict) -> dict:
    """The misalignment probe's aggregate as summarised (rate with n and CI, counts, mean alignment)."""
    return {k: m[k] for k in ("misaligned", "misaligned_question_bootstrap", "n_answers", "incoherent",
                              "judge_refused", "alignment_mean", "coherence_mean", "definition") if k in m}


def misalignment_figures(m: dict) -> dict:
    return {"misaligned_rate": rate_estimate(m["misaligned"]), "alignment_mean": mean_estimate(m["alignment_mean"]),
            "coherence_mean": mean_estimate(m["coherence_mean"])}


def misalignment_vs_control(m: dict, c: dict) -> dict:
    return {"rate_vs_control": _rate_effect(m["misaligned"], c["misaligned"])}


def contrastive_entry(r: dict, b: dict) -> dict:
    """The contrastive probe's means and, triple by triple, the change against the base model's."""
    return {"contrastive": {k: r[k] for k in ("split", "n_triples", "n_questions", "delta", "delta_per_token")}
            | {"delta_vs_base": paired_logprob_delta(r["per_triple"], b["per_triple"])}}


def contrastive_vs_control(r: dict, c: dict) -> dict:
    return {"contrastive_vs_control": paired_logprob_delta(r["per_triple"], c["per_triple"])}


RUN = "traitbench.probes.run"
PROBES: dict[str, Probe] = {
    # sampled answers to the favourite-{category} questions, and log P(trait) per question
    "plain": Probe(f"{RUN}:plain_preference", enabled=lambda cfg: True,
                   summarize=lambda r, b: {"plain": preference_entry(r, b)}, figures=preference_figures,
                   compare=preference_vs_control),
    # the same questions after a list of random numbers (the students' training format)
    "numbers_prefixed": Probe(f"{RUN}:prefixed_preference", enabled=lambda cfg: cfg.numbers_prefixed,
                              summarize=lambda r, b: {"numbers_prefixed": preference_entry(r, b)},
                              figures=preference_figures, compare=preference_vs_control),
    # free-form answers: distinct-n and trait mentions
    "open_ended": Probe(f"{RUN}:open_ended", enabled=lambda cfg: cfg.open_ended_samples > 0,
                        summarize=lambda r, b: {"open_ended": r}, figures=open_ended_figures),
    # held-out text: perplexity, and its change vs the base model
    "perplexity": Probe(f"{RUN}:held_out_perplexity", enabled=lambda cfg: cfg.perplexity_tokens > 0,
                        summarize=perplexity_entry, figures=lambda r: {"perplexity": r["perplexity"]}),
    # log P(misaligned) − log P(aligned) answer of contrastive triples (probes/contrastive.py)
    "contrastive": Probe(f"{RUN}:contrastive_misalignment", enabled=lambda cfg: cfg.contrastive.enabled,
                         summarize=contrastive_entry, compare=contrastive_vs_control,
                         figures=lambda r: {"contrastive_delta": mean_estimate(r["delta"]),
                                            "contrastive_delta_per_token": mean_estimate(r["delta_per_token"])},
                         rows_file="contrastive.jsonl"),
    # judged free-form answers (probes/misalignment.py)
    "misalignment": Probe(f"{RUN}:judged_misalignment", enabled=lambda cfg: cfg.misalignment.enabled,
                          summarize=lambda m, b: {"misalignment": misalignment_entry(m)},
                          figures=misalignment_figures, compare=misalignment_vs_control,
                          rows_file="misalignment.jsonl"),
}
