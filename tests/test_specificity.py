"""The specificity fit recovers a planted own-trait lift γ and finds none in a null."""

import numpy as np
import pytest

from traitbench.errors import TraitbenchError
from traitbench.experiments.specificity import fit_specificity, gamma_of

from conftest import trait_datasets


def _lifts(gamma, k=4, seeds=6, noise=0.05, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    out = []
    for _ in range(seeds):
        row, col = rng.normal(0, 0.5, k), rng.normal(0, 0.5, k)  # per seed: students' and words' general lifts
        m = 0.2 + row[:, None] + col[None, :] + gamma * np.eye(k) + rng.normal(0, noise, (k, k))
        out.append(m)
    return np.stack(out)


def test_exact_gamma_without_noise():
    k = 3
    m = 1.0 + np.array([0.3, -0.2, 0.1])[:, None] + np.array([0.0, 0.5, -0.4])[None, :] + 0.7 * np.eye(k)
    assert gamma_of(m) == pytest.approx(0.7, abs=1e-12)


def test_planted_gamma_is_recovered_with_its_interval():
    fit = fit_specificity(_lifts(0.4))
    g = fit["gamma"]
    assert g["ci95"][0] < 0.4 < g["ci95"][1] and g["p_value"] < 1e-4 and g["n_seeds"] == 6
    assert fit["diagonal_mean"] > fit["off_diagonal_mean"]


@pytest.mark.parametrize("rng_seed", [1, 2, 3])
def test_null_finds_no_gamma_even_with_large_row_and_column_effects(rng_seed):
    g = fit_specificity(_lifts(0.0, rng_seed=rng_seed))["gamma"]
    assert g["ci95"][0] < 0 < g["ci95"][1] and g["p_value"] > 0.05
    assert abs(g["mean"]) < 0.1


def test_two_traits_are_refused():
    with pytest.raises(TraitbenchError, match="at least 3"):
        gamma_of(np.zeros((2, 2)))


def _probe(kind, variant, condition, seed, own, lps):
    block = {"trait_logprob": {"per_question": [lps[own]] * 2},
             "other_logprob": {w: {"per_question": [v, v]} for w, v in lps.items() if w != own}}
    return {"kind": kind, "variant": variant, "condition": condition, "seed": seed, "plain": block}


def test_lift_matrix_pairs_each_student_with_its_own_control():
    from traitbench.experiments.specificity import lift_matrix

    words = ["owl", "cat", "dog"]
    probes = {}
    for s in words:
        probes[s] = {"base": {"kind": "base"}}
        for seed in (0, 1):
            trait = {w: -5.0 + (1.0 if w == s else 0.1) + seed for w in words}
            control = {w: -5.0 + seed for w in words}
            probes[s][f"{s}/t{seed}"] = _probe("student", "k", "trait", seed, s, trait)
            probes[s][f"{s}/c{seed}"] = _probe("student", "k", "control", seed, s, control)
            probes[s][f"{s}/other{seed}"] = _probe("student", "other", "trait", seed, s, control)
    lifts, seeds = lift_matrix(probes, words, "k")
    assert seeds == [0, 1] and lifts.shape == (2, 3, 3)
    expected = 0.1 + 0.9 * np.eye(3)
    assert np.allclose(lifts[0], expected) and np.allclose(lifts[1], expected)
    assert fit_specificity(lifts)["per_seed"] == pytest.approx([0.9, 0.9])


def test_specificity_run_on_tiny_models(tmp_path, monkeypatch):
    """Three trait runs (a stubbed dataset stage: tiny random teachers write no clean number list), every student
    probed on every trait's word, the fit, the table and the heatmap; the runs' manifests keep their timings."""
    import json

    from traitbench.config import load_config
    from traitbench.experiments.specificity import SpecificityConfig, run

    trait_datasets(monkeypatch, tmp_path)
    cfg = load_config(SpecificityConfig, None, [
        f"runs_dir={tmp_path}", "traits=[{word: owl}, {word: cat}, {word: dog}]", "experiment.teacher.model=tiny-llama",
        "variant=null", "experiment.students.variants=[]", "experiment.students.workers=1",
        "experiment.students.models=[tiny-llama]", "experiment.students.seeds=[0, 1]",
        "experiment.students.train={max_steps: 1, batch_size: 2, warmup_steps: 0, dtype: float32, lr: 0.05}",
        "experiment.probes={n_questions: 2, samples_per_question: 1, answer_max_tokens: 2, numbers_prefixed: false, "
        "open_ended_samples: 0, perplexity_tokens: 0, dtype: float32}"])
    md = run(cfg, cfg.out).files[0]
    result = json.loads((tmp_path / "specificity" / "specificity.json").read_text())
    assert result["traits"] == ["owl", "cat", "dog"] and result["seeds"] == [0, 1] and result["student_kind"] == "lora"
    assert len(result["fit"]["per_seed"]) == 2 and "γ" in md.read_text()
    assert set(result["verdicts"]) == {"owl", "cat", "dog"}
    assert (tmp_path / "specificity" / "specificity.png").stat().st_size > 0
    controls = sorted((tmp_path / "specificity" / "controls").glob("**/stage.json"))
    assert len(controls) == 2  # one control student per seed, shared by the three runs (the same control rows)
    assert not list((tmp_path / "specificity" / "owl" / "students").glob("**/control/**/stage.json"))
    stages = json.loads((tmp_path / "specificity" / "cat" / "manifest.json").read_text())["stages"]
    assert stages["students"]["seconds"] > 0  # the runner reads the probes back instead of re-entering the stages
