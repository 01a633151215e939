import json

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from conftest import run_study
from traitbench.experiments.collapse_gmm import (
    Evaluator,
    GMMCollapseConfig,
    load_real,
    study,
    run_chain,
    sample,
    total_spread,
)
from traitbench.errors import TraitbenchError

TINY = dict(
    dataset="wine", features=["alcohol"], n_components=1, n_samples=10, generations=15, n_chains=8,
    n_eval_samples=500,
)


def test_load_real_standardizes_and_rejects_unknown_columns():
    x = load_real("wine", ["alcohol", "proline"])
    assert x.shape == (178, 2)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(x.std(0), 1, atol=1e-9)
    assert load_real("diabetes", ["target"]).shape == (442, 1)
    with pytest.raises(TraitbenchError, match="no column 'nope'"):
        load_real("wine", ["nope"])


def test_total_spread_matches_samples():
    real = load_real("wine", ["alcohol", "color_intensity"])
    gmm = GaussianMixture(3, random_state=0).fit(real)
    xs = sample(gmm, 200_000, np.random.default_rng(0))
    assert total_spread(gmm) == pytest.approx(np.sqrt(np.trace(np.cov(xs.T))), rel=0.01)


def test_training_set_sizes_per_regime():
    cfg = GMMCollapseConfig(**TINY)
    real = load_real(cfg.dataset, cfg.features)
    evaluate = Evaluator(real, cfg)
    acc = run_chain(real, cfg, "accumulate", 0, evaluate)["train_size"]
    rep = run_chain(real, cfg, "replace", 0, evaluate)["train_size"]
    assert acc == [len(real) + g * cfg.n_samples for g in range(cfg.generations + 1)]
    assert rep == [len(real)] + [cfg.n_samples] * cfg.generations


def test_replace_collapses_while_accumulate_stays(tmp_path):
    summary, _ = study(GMMCollapseConfig(**TINY), tmp_path, progress=False)
    rep, acc = summary["regimes"]["replace"], summary["regimes"]["accumulate"]
    assert rep[0]["spread"] == acc[0]["spread"]  # generation 0 is shared
    assert rep[-1]["spread"]["mean"] < 0.7 * rep[0]["spread"]["mean"]
    assert rep[-1]["spread"]["mean"] < 0.7 * acc[-1]["spread"]["mean"]
    assert acc[-1]["spread"]["mean"] == pytest.approx(acc[0]["spread"]["mean"], rel=0.1)
    assert rep[-1]["tail_mass"]["median"] < 0.5 * acc[-1]["tail_mass"]["median"]
    assert rep[-1]["distance"]["mean"] > acc[-1]["distance"]["mean"]
    assert rep[-1]["real_loglik"]["mean"] < acc[-1]["real_loglik"]["mean"]


def test_main_writes_summary_and_plot_in_2d(tmp_path, capsys):
    sets = ["dataset=wine", "features=[alcohol, color_intensity]", "n_samples=20", "generations=3", "n_chains=2"]
    sets += ["n_eval_samples=200", "n_projections=4"]
    run_study("collapse-gmm", sets, str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (tmp_path / "collapse_gmm.png").stat().st_size > 0
    assert summary["data"]["dim"] == 2
    for regime in ("replace", "accumulate"):
        rows = summary["regimes"][regime]
        assert [r["gen"] for r in rows] == [0, 1, 2, 3]
        for metric in ("spread", "tail_mass", "distance", "real_loglik"):
            assert set(rows[-1][metric]) == {"mean", "ci95", "n", "median"} and rows[-1][metric]["n"] == 2
    assert "accumulate" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stage = manifest["stages"]["collapse-gmm"]
    assert manifest["config"]["dataset"] == "wine" and len(stage["dataset_hashes"]["wine"]) == 64
    assert manifest["git"]["sha"] and manifest["libraries"]["scikit-learn"]


def test_config_rejects_repeated_regimes():
    with pytest.raises(TraitbenchError, match="regimes"):
        run_study("collapse-gmm", ["regimes=[replace, replace]"], "unused")


def test_mean_ci95_is_json_ready():
    from traitbench.stats import mean_ci95

    assert mean_ci95([]) == {"mean": None, "ci95": None, "n": 0}
    assert mean_ci95([0.5]) == {"mean": 0.5, "ci95": None, "n": 1}
    out = mean_ci95([1.0, 2.0, 3.0])
    assert out["mean"] == 2.0 and out["ci95"] == pytest.approx([2 - 2.4843, 2 + 2.4843], abs=1e-3)
