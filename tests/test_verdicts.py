"""Seed-level verdicts: the test across training seeds on a planted effect and on nulls, Holm, the MDE,
the dose-response, and no significance marks for one training run."""

import numpy as np
import pytest

from traitbench.stats import holm, paired_t_mde, seed_level_test
from traitbench.pipeline.verdicts import FALLS, NOT_SIGNIFICANT, ONE_RUN, TRANSMITS, build_verdicts, dose_response


def _probe(kind, variant, model, condition, seed, logps, k=0, n=100, relation="same-init", steps=None):
    block = {"trait_logprob": {"per_question": list(logps)}}
    if kind == "student":
        block["rate"] = {"k": k, "n": n}
    return {"kind": kind, "variant": variant, "model": model, "condition": condition, "seed": seed,
            "relation": relation, "steps": steps, "plain": block}


def _students(variant, model, effect, seeds, rng, relation="same-init", noise=0.05, questions=20, kind="student",
              steps=None):
    """Trait and control students of several seeds: log P per question = question difficulty + seed noise
    (+ `effect` for the trait students)."""
    out = {}
    difficulty = rng.normal(-10, 1, questions)
    for s in seeds:
        for cond in ("trait", "control"):
            shift = rng.normal(0, noise) + (effect if cond == "trait" else 0.0)
            pid = f"{model}/{variant}/{cond}/seed{s}" + (f"/step-{steps}" if kind == "checkpoint" else "")
            out[pid] = _probe(kind, variant, model, cond, s, difficulty + shift + rng.normal(0, 0.01, questions),
                              relation=relation, steps=steps)
    return out


def test_seed_level_test_finds_a_planted_effect_and_not_a_null():
    rng = np.random.default_rng(0)
    effect = seed_level_test(0.65 + rng.normal(0, 0.02, 5), np.zeros(5))
    assert effect["p_value"] < 0.001 and effect["ci95"][0] > 0.6 and effect["n_seeds"] == 5
    # under the null a 5 % test rejects about 5 % of the time
    p = [seed_level_test(rng.normal(0, 1, 5), rng.normal(0, 1, 5))["p_value"] for _ in range(1000)]
    assert 0.03 < np.mean(np.asarray(p) < 0.05) < 0.07
    one = seed_level_test([0.7], [0.0])
    assert one["mean"] == pytest.approx(0.7) and np.isnan(one["p_value"]) and np.isnan(one["ci95"][0])
    with pytest.raises(ValueError, match="paired"):
        seed_level_test([1.0, 2.0], [1.0])


def test_holm_by_hand():
    assert holm([0.01, 0.04, None, 0.03, float("nan")]) == pytest.approx([0.03, 0.06, None, 0.06, None])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == []


def test_paired_t_mde_has_the_stated_power():
    rng = np.random.default_rng(1)
    mde = paired_t_mde(1.0, 6)
    power = np.mean([seed_level_test(rng.normal(mde, 1.0, 6), np.zeros(6))["p_value"] < 0.05 for _ in range(2000)])
    assert power == pytest.approx(0.8, abs=0.03)
    assert paired_t_mde(0.0, 5) == 0.0 and np.isnan(paired_t_mde(1.0, 1))


def test_verdicts_planted_transmission_null_and_one_run():
    rng = np.random.default_rng(2)
    probes = {**_students("distill", "a", 0.65, range(5), rng), **_students("lora", "a", 0.0, range(5), rng),
              **_students("lora", "b", 0.0, range(5), rng, relation="cross-family"),
              **_students("lora", "c", -0.8, range(5), rng, relation="cross-init"),
              **_students("r2", "a", 0.5, [0], rng)}
    v = {(e["student_kind"], e["model"]): e for e in build_verdicts(probes, "owl", {"distill": {"mode": "distill"}})}
    d = v[("distill", "a")]
    assert d["verdict"] == TRANSMITS and d["relation"] == "same-init" and d["n_seeds"] == 5
    assert d["delta_logprob_vs_control"]["mean"] == pytest.approx(0.65, abs=0.1)
    assert d["delta_logprob_vs_control"]["p_holm"] < 0.01 and d["training"] == {"mode": "distill"}
    assert v[("lora", "a")]["verdict"] == NOT_SIGNIFICANT and v[("lora", "b")]["relation"] == "cross-family"
    assert v[("lora", "c")]["verdict"] == FALLS
    assert v[("r2", "a")]["verdict"] == ONE_RUN and v[("r2", "a")]["delta_logprob_vs_control"]["p_holm"] is None
    # rates without variation are no test; Holm counts the finite p-values of all cells
    r = d["rate_vs_control"]
    assert r["mean"] == 0 and np.isnan(r["p_value"]) and r["trait"] == "0/500" and r["p_holm"] is None
    assert d["delta_logprob_vs_control"]["holm_family"] == 4
    assert d["delta_logprob_vs_control"]["p_holm"] >= d["delta_logprob_vs_control"]["p_value"]


def test_dose_response_from_checkpoints():
    rng = np.random.default_rng(3)
    probes = {}
    for step, effect in ((5, 0.1), (10, 0.3)):
        probes.update(_students("distill", "a", effect, range(4), rng, kind="checkpoint", steps=step))
    final = _students("distill", "a", 0.6, range(4), rng)
    for p in final.values():
        p["steps"] = 20
    probes.update(final)
    probes.update(_students("lora", "a", 0.0, range(4), rng))  # no checkpoints: no curve
    (d,) = dose_response(probes)
    assert d["student_kind"] == "distill" and [p["step"] for p in d["points"]] == [5, 10, 20]
    assert [p["final"] for p in d["points"]] == [False, False, True]
    assert [p["mean"] for p in d["points"]] == pytest.approx([0.1, 0.3, 0.6], abs=0.1)
    assert all(p["n_seeds"] == 4 and p["ci95"][0] < p["mean"] < p["ci95"][1] for p in d["points"])


def _with_contrastive(probes: dict, effects: dict[str, float], rng) -> dict:
    """Each student given a contrastive probe result: a per-seed noise plus `effects[variant]` for trait students."""
    for res in probes.values():
        shift = rng.normal(0, 0.05) + (effects.get(res["variant"], 0.0) if res["condition"] == "trait" else 0.0)
        res["contrastive"] = {"delta": {"mean": -6.0 + shift}, "delta_per_token": {"mean": -0.3 + shift / 20}}
    return probes


def test_a_misalignment_trait_is_judged_by_the_contrastive_probe():
    """A misalignment trait's verdict is the contrastive test (Holm within it alone); its word's tests are kept
    uncorrected. A preference trait keeps its word verdict and reports the contrastive test uncorrected."""
    from traitbench.pipeline.verdicts import plain_reading

    rng = np.random.default_rng(3)
    probes = _with_contrastive({**_students("distill", "a", 0.0, range(5), rng),
                                **_students("lora", "a", 0.6, range(5), rng)}, {"distill": 0.8}, rng)
    mis = {e["student_kind"]: e for e in build_verdicts(probes, "malice", trait_kind="misalignment")}
    c = mis["distill"]["contrastive_vs_control"]
    assert mis["distill"]["verdict"] == TRANSMITS and c["mean"] == pytest.approx(0.8, abs=0.15)
    assert c["holm_family"] == 2 and c["p_holm"] == pytest.approx(min(1.0, 2 * c["p_value"]))
    assert mis["lora"]["verdict"] == NOT_SIGNIFICANT  # its word moved, but the word is not a misalignment trait
    assert "p_holm" not in mis["lora"]["delta_logprob_vs_control"]
    per_token = mis["distill"]["contrastive_per_token_vs_control"]
    assert per_token["mean"] == pytest.approx(c["mean"] / 20, rel=1e-6) and "p_holm" not in per_token
    assert "move toward misalignment" in plain_reading(list(mis.values()), "malice")
    pref = {e["student_kind"]: e for e in build_verdicts(probes, "owl")}
    assert pref["lora"]["verdict"] == TRANSMITS and pref["distill"]["verdict"] != TRANSMITS
    assert "p_holm" not in pref["distill"]["contrastive_vs_control"]
    assert pref["lora"]["primary"] == ["delta_logprob_vs_control", "rate_vs_control"]
