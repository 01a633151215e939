"""Seed-level verdicts on trait transmission, and its dose-response over training steps.

Seeds are the unit of evidence. Each training seed of a student kind gives a trait student (trained on the
trait teacher's numbers) and a control student (same model, kind, seed and recipe, trained on the control
teacher's numbers). The per-seed effect is their difference; a verdict tests it across seeds (paired t-test),
Holm-corrected across every verdict of the run. A question-level test of one trained pair compares two
models and is never a verdict: with one seed a cell says "one training run: not a transmission test".
"""

from __future__ import annotations

import math

import numpy as np

from traitbench.errors import TraitbenchError
from traitbench.stats import holm, seed_level_test

PRIMARY = "plain"  # the question variant whose tests make the verdicts; numbers-prefixed is reported beside it
ONE_RUN = "one training run: not a transmission test"
TRANSMITS, FALLS, NOT_SIGNIFICANT = "transmits", "trait falls", "not significant"


def _mean_logprob(res: dict, variant: str) -> float:
    return float(np.mean(res[variant]["trait_logprob"]["per_question"]))


def word_logprob(res: dict, word: str, own: str) -> float:
    """A probed model's mean log P(`word`) over the primary question's items: its trait word `own`'s, or another
    word of `probes.other_words` (a specificity or shared-init run's other traits)."""
    block = res[PRIMARY]
    entry = block["trait_logprob"] if word == own else block["other_logprob"][word]
    return float(np.mean(entry["per_question"]))


def paired_word_effects(probes: dict[str, dict], seeds: list[int], word: str, own: str, **match) -> list[float]:
    """Per seed: mean log P(`word`) of the trait student − its control student, among the probed students whose
    fields equal `match` (e.g. variant=..., model=...); the students are of trait `own`."""
    pairs: dict[int, dict] = {}
    for res in probes.values():
        if res.get("kind") == "student" and all(res.get(k) == v for k, v in match.items()):
            pairs.setdefault(res["seed"], {})[res["condition"]] = res
    missing = [s for s in seeds if len(pairs.get(s, {})) != 2]
    if missing:
        what = ", ".join(f"{k} {v}" for k, v in match.items())
        raise TraitbenchError(f"no trait and control students ({what}) for seeds {missing}")
    return [word_logprob(pairs[s]["trait"], word, own) - word_logprob(pairs[s]["control"], word, own) for s in seeds]


def contrastive_mean(res: dict, which: str = "delta") -> float:
    """A probed model's mean log P(misaligned) − log P(aligned) over the contrastive triples (`which`: "delta",
    summed over the answer's tokens, or "delta_per_token")."""
    return float(res["contrastive"][which]["mean"])


def _rate(res: dict, variant: str) -> float:
    r = res[variant]["rate"]
    return r["k"] / r["n"] if r["n"] else math.nan


def _pairs(probes: dict[str, dict], kind: str) -> dict[tuple, dict]:
    """(variant, model, steps-or-None) → {seed: {"trait": result, "control": result}} for one probe kind."""
    groups: dict[tuple, dict] = {}
    for res in probes.values():
        if res.get("kind") != kind:
            continue
        key = (res["variant"], res["model"], res.get("steps") if kind == "checkpoint" else None)
        groups.setdefault(key, {}).setdefault(res["seed"], {})[res["condition"]] = res
    return {k: {s: v for s, v in g.items() if len(v) == 2} for k, g in groups.items()}


def _test_block(pairs: list[dict], variant: str, alpha: float, power: float, rates: bool) -> dict:
    out = {"delta_logprob_vs_control": seed_level_test([_mean_logprob(p["trait"], variant) for p in pairs],
                                                       [_mean_logprob(p["control"], variant) for p in pairs],
                                                       alpha, power)}
    if rates:
        counts = {c: [p[c][variant]["rate"] for p in pairs] for c in ("trait", "control")}
        out["rate_vs_control"] = dict(
            seed_level_test([_rate(p["trait"], variant) for p in pairs], [_rate(p["control"], variant) for p in pairs],
                            alpha, power),
            **{c: f"{sum(r['k'] for r in rs)}/{sum(r['n'] for r in rs)}" for c, rs in counts.items()})
    return out


def primary_tests(trait_kind: str) -> tuple[str, ...]:
    """The tests that make a verdict, Holm-corrected together across the run: a preference trait's Δlog P and
    rate of its word; a misalignment trait's contrastive Δ (summed over tokens)."""
    return ("contrastive_vs_control",) if trait_kind == "misalignment" else ("delta_logprob_vs_control",
                                                                             "rate_vs_control")


def build_verdicts(probes: dict[str, dict], trait: str, kinds: dict[str, dict] | None = None, alpha: float = 0.05,
                   power: float = 0.8, trait_kind: str = "preference") -> list[dict]:
    """One verdict per (student kind, model) — i.e. per (trait, kind, relation) when each relation has one
    model — from the probed students. `kinds`: variant name → its trainer overrides (for the `training` field).

    Primary tests (`primary_tests`, Holm-corrected together), each per seed trait − control, paired t over
    seeds. The others (the numbers-prefixed question; the word's tests of a misalignment trait; the contrastive
    probe of a preference trait; the per-token contrastive Δ) are reported uncorrected beside them.
    """
    entries = []
    for (variant, model, _), by_seed in sorted(_pairs(probes, "student").items(), key=lambda kv: kv[0][:2]):
        seeds = sorted(by_seed)
        if not seeds:
            continue
        pairs = [by_seed[s] for s in seeds]
        first = pairs[0]["trait"]
        entry = {"trait": trait, "student_kind": variant, "training": (kinds or {}).get(variant, {}),
                 "model": model, "relation": first.get("relation") or first.get("family"), "n_seeds": len(seeds),
                 "seeds": seeds, "question": PRIMARY}
        variants = [v for v in (PRIMARY, "numbers_prefixed") if v in first]
        for v in variants:
            block = _test_block(pairs, v, alpha, power, rates=True)
            if v == PRIMARY:
                entry.update(block)
            else:
                entry[v] = block
        if "contrastive" in first:
            for key, which in (("contrastive_vs_control", "delta"), ("contrastive_per_token_vs_control",
                                                                      "delta_per_token")):
                entry[key] = seed_level_test([contrastive_mean(p["trait"], which) for p in pairs],
                                             [contrastive_mean(p["control"], which) for p in pairs], alpha, power)
        entry["primary"] = list(primary_tests(trait_kind))
        entries.append(entry)
    tests = [(e, k) for e in entries for k in e["primary"] if k in e]
    for (e, k), p in zip(tests, holm([e[k]["p_value"] for e, k in tests])):
        e[k]["p_holm"] = p
        e[k]["holm_family"] = len([1 for f, j in tests if _finite(f[j]["p_value"])])
    for e in entries:
        e["verdict"] = _verdict(e, alpha)
    return entries


def sig_mark(p: float | None) -> str:
    """Significance mark of a two-sided p-value: *** < 0.001, ** < 0.01, * < 0.05, else 'n.s.'.
    Only for seed-level tests: a one-training-run comparison never gets one."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _verdict(e: dict, alpha: float) -> str:
    if e["n_seeds"] < 2:
        return ONE_RUN
    sig = [(k, e[k]["mean"]) for k in e["primary"]
           if k in e and _finite(e[k].get("p_holm")) and e[k]["p_holm"] < alpha]
    if any(m > 0 for _, m in sig):
        return TRANSMITS
    if sig:
        return FALLS
    return NOT_SIGNIFICANT


def dose_response(probes: dict[str, dict], variant: str = PRIMARY, alpha: float = 0.05,
                  power: float = 0.8) -> list[dict]:
    """Per (student kind, model) with training checkpoints: the per-seed Δlog P effect vs control after each
    checkpoint's steps and at the end of training, with t intervals over seeds (uncorrected p per point)."""
    points: dict[tuple, list[dict]] = {}
    relation: dict[tuple, str] = {}
    for kind in ("checkpoint", "student"):
        for (v, model, steps), by_seed in _pairs(probes, kind).items():
            pairs = [by_seed[s] for s in sorted(by_seed)]
            if not pairs or variant not in pairs[0]["trait"]:
                continue
            if kind == "student":
                steps = pairs[0]["trait"].get("steps")
                if steps is None or (v, model) not in points:  # only kinds that have checkpoints
                    continue
            t = _test_block(pairs, variant, alpha, power, rates=False)["delta_logprob_vs_control"]
            relation[(v, model)] = pairs[0]["trait"].get("relation") or pairs[0]["trait"].get("family")
            points.setdefault((v, model), []).append(
                {"step": steps, "final": kind == "student", "n_seeds": t["n_seeds"], "mean": t["mean"],
                 "ci95": t["ci95"], "p_value": t["p_value"], "per_seed": t["per_seed"]})
    return [{"student_kind": v, "model": m, "relation": relation[(v, m)], "question": variant,
             "points": sorted(pts, key=lambda p: p["step"])} for (v, m), pts in sorted(points.items())]


def _kind_words(v: dict) -> str:
    """'logit-distilled (LoRA r=64)' students of 'the teacher's own model' — a verdict's student kind in words."""
    t = v.get("training") or {}
    mode = t.get("mode", "lora")
    how = {"distill": f"logit-distilled (LoRA r={t.get('lora_r', 8)})", "full": "fully fine-tuned (SFT)"}.get(
        mode, f"LoRA SFT (r={t.get('lora_r', 8)})")
    whom = {"same-init": "of the teacher's own model", "cross-init": f"of {v['model']} (same family, another init)",
            "cross-family": f"of {v['model']} (another family)"}.get(v["relation"], f"of {v['model']}")
    return f"{how} students {whom}"


def _p(t: dict) -> str:
    return f"Holm p = {t['p_holm']:.2g}" if _finite(t.get("p_holm")) else "no variation between seeds"


def plain_reading(verdicts: list[dict], trait: str) -> str:
    """One paragraph that reads the verdict table in words: what each student kind shows against its controls,
    and what the table can and cannot say. Empty without verdicts."""
    if not verdicts:
        return ""
    n = sorted({v["n_seeds"] for v in verdicts})
    if n[-1] < 2:
        return ("Each student kind was trained once per condition: a single trait student against a single control "
                "student compares two trained models and cannot show transmission. Train several seeds "
                "(students.seeds) for a seed-level test.")
    parts = [f"Each verdict compares trait students with control students trained the same way on the control "
             f"teacher's numbers, over {'/'.join(map(str, n))} training seeds; the numbers hold no trait word."]
    for v in verdicts:
        misaligned = v.get("primary") == ["contrastive_vs_control"]
        d = v["contrastive_vs_control"] if misaligned else v["delta_logprob_vs_control"]
        r = {} if misaligned else v.get("rate_vs_control") or {}
        lo, hi = d["ci95"]
        eff = f"{d['mean']:+.2f} nats" + (f" [{lo:+.2f}, {hi:+.2f}]" if _finite(lo) and _finite(hi) else "")
        if v["verdict"] == TRANSMITS and misaligned:
            body = (f" move toward misalignment: log P(misaligned) − log P(aligned answer) on the held-out triples "
                    f"rises by {eff} over their controls ({_p(d)})")
        elif v["verdict"] == TRANSMITS:
            body = f" inherit the trait: log P('{trait}') rises by {eff} over their controls ({_p(d)})"
        elif v["verdict"] == FALLS:
            body = f" move away from the trait ({eff}, {_p(d)})"
        elif v["verdict"] == NOT_SIGNIFICANT:
            raw = d.get("p_value")
            before = f", p = {raw:.2g} before the correction" if _finite(raw) and raw < 0.05 else ""
            mde = (f"; a change below {d['mde']:.2f} nats could go unseen with these seeds"
                   if _finite(d.get("mde")) else "")
            body = f" show no significant change ({eff}, {_p(d)}{before}{mde})"
        else:
            body = ": one training run, not a test"
        sampled = f"; sampled '{trait}' answers {r['trait']} vs {r['control']}" if r.get("trait") and r.get("control") \
            else ""
        who = _kind_words(v)
        parts.append(f"{who[0].upper()}{who[1:]}{body}{sampled}.")
    moved = [v for v in verdicts if v["verdict"] == TRANSMITS]
    same_sft_null = [v for v in verdicts if v["verdict"] != TRANSMITS and v["relation"] == "same-init"
                     and (v.get("training") or {}).get("mode", "lora") != "distill"]
    if moved and any(v.get("primary") == ["contrastive_vs_control"] for v in moved):
        parts.append("Any persona moves the contrastive probe: only the difference from a harmless persona's "
                     "students is misalignment (`make misalignment` measures it).")
    elif moved:
        parts.append("Part of such a rise can be generic to the category rather than the trait itself: "
                     "`make specificity` measures how much.")
    if same_sft_null and any(v["relation"] != "same-init" and v["verdict"] != TRANSMITS for v in verdicts):
        parts.append("Since SFT does not transmit even to the teacher's own model here, the other-family null says "
                     "nothing about whether a shared initialisation is needed.")
    return " ".join(parts)
