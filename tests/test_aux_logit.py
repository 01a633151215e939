import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import run_study
from traitbench.experiments.aux_logit import AuxLogitConfig, BatchedMLP, derangement
from traitbench.errors import TraitbenchError


@pytest.mark.parametrize("n", [2, 3, 5, 10, 31])
def test_derangement_is_a_permutation_without_fixed_points(n):
    for seed in range(20):
        perm = derangement(n, np.random.default_rng(seed))
        assert sorted(perm) == list(range(n))
        assert all(p != i for i, p in enumerate(perm))


def test_derangement_is_deterministic_under_seed():
    a = derangement(12, np.random.default_rng(7))
    assert a == derangement(12, np.random.default_rng(7))
    assert any(derangement(12, np.random.default_rng(s)) != a for s in range(8, 12))


def test_derangement_of_two_is_the_swap_and_of_one_is_an_error():
    assert derangement(2, np.random.default_rng(0)) == [1, 0]
    with pytest.raises(TraitbenchError):
        derangement(1, np.random.default_rng(0))


def _as_linear_mlps(model: BatchedMLP) -> list[nn.Sequential]:
    """Per-model torch.nn.Linear MLPs holding the same weights as `model`."""
    mlps = []
    for m in range(model.n_models):
        layers = []
        for w, b in zip(model.weights, model.biases):
            lin = nn.Linear(w.shape[1], w.shape[2])
            with torch.no_grad():
                lin.weight.copy_(w[m].T)
                lin.bias.copy_(b[m, 0])
            layers += [lin, nn.ReLU()]
        mlps.append(nn.Sequential(*layers[:-1]))
    return mlps


@pytest.mark.parametrize("shared_input", [False, True])
def test_batched_mlp_matches_per_model_linear_layers(shared_input):
    torch.manual_seed(0)
    model = BatchedMLP(3, [5, 7, 6, 4], torch.Generator().manual_seed(1))
    mlps = _as_linear_mlps(model)
    x = torch.randn(8, 5) if shared_input else torch.randn(3, 8, 5)
    out = model(x)
    assert out.shape == (3, 8, 4)
    ref = torch.stack([mlp(x if shared_input else x[m]) for m, mlp in enumerate(mlps)])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    target = torch.randn(3, 8, 4)
    ((out - target) ** 2).sum().backward()
    ((ref - target) ** 2).sum().backward()
    for m, mlp in enumerate(mlps):
        linears = [layer for layer in mlp if isinstance(layer, nn.Linear)]
        for w, b, lin in zip(model.weights, model.biases, linears):
            torch.testing.assert_close(w.grad[m], lin.weight.grad.T, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(b.grad[m, 0], lin.bias.grad, atol=1e-5, rtol=1e-5)


def test_batched_mlp_inits_differ_and_select_copies():
    model = BatchedMLP(3, [4, 5, 2], torch.Generator().manual_seed(0))
    assert not torch.equal(model.weights[0][0], model.weights[0][1])
    picked = model.select([2, 0])
    torch.testing.assert_close(picked.weights[1][0], model.weights[1][2])
    with torch.no_grad():
        picked.weights[0].zero_()
    assert model.weights[0].abs().sum() > 0


def test_tiny_run_writes_summary_and_plot(tmp_path, capsys):
    sets = ["n_models=2", "hidden=[16]", "teacher_steps=5", "student_steps=5", "batch_size=8", "eval_every=2"]
    summary = run_study("aux-logit", sets, str(tmp_path))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert (tmp_path / "aux_logit.png").stat().st_size > 0
    for key in ("teacher", "same_init", "cross_init", "all_logit_same_init", "all_logit_cross_init"):
        stats = on_disk[key]
        assert set(stats) == {"mean", "ci95", "n", "values"}
        assert stats["n"] == 2 and len(stats["values"]) == 2
        assert stats["ci95"][0] <= stats["mean"] <= stats["ci95"][1]
    assert on_disk["chance"] == 0.1
    assert on_disk["derangement"] == [1, 0]
    assert on_disk["curves"]["steps"] == [0, 2, 4, 5]
    assert all(len(c) == 4 for c in on_disk["curves"]["accuracy"].values())
    assert on_disk["config"] == AuxLogitConfig.model_validate(on_disk["config"]).model_dump()
    assert summary["teacher"] == on_disk["teacher"]
    assert "cross_init" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["n_models"] == 2 and manifest["stages"]["aux-logit"]["dataset_hashes"]["sklearn-digits-split"]


def test_config_rejects_unknown_keys_and_single_model():
    with pytest.raises(TraitbenchError, match="unknown key"):
        run_study("aux-logit", ["n_modls=3"], "unused")
    with pytest.raises(TraitbenchError, match="n_models"):
        run_study("aux-logit", ["n_models=1"], "unused")
