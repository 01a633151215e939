"""Chat-model collapse on a tiny random model: chain structure per regime, summary, plot, config errors."""

import json

import pytest
import torch

from conftest import run_study
from traitbench.experiments.collapse_chat import ChatCollapseConfig
from traitbench.errors import TraitbenchError

torch.set_num_threads(1)

TINY = ["model=tiny-llama", "generations=2", "open_ended_samples=1", "open_ended_max_tokens=6", "number_prompts=4",
        "number_max_tokens=6", "demonstrations=0", "probe_questions=2", "probe_samples=2", "probe_max_tokens=4",
        "perplexity_tokens=64", "dtype=float32", "train.max_steps=1", "train.batch_size=32", "train.dtype=float32"]


def test_chain_per_regime_and_summary(tmp_path, capsys):
    summary = run_study("collapse-chat", TINY, str(tmp_path))
    rep, acc = summary["regimes"]["replace"], summary["regimes"]["accumulate"]
    assert [r["gen"] for r in rep] == [r["gen"] for r in acc] == [0, 1, 2]
    assert rep[0] == acc[0] and rep[1] == acc[1]  # generation 0 and 1 (trained on gen 0) are shared
    assert rep[0]["train"] is None and rep[1]["train"]["size"] == rep[0]["n_rows"] > 0
    assert rep[2]["model"] == "gen2-replace" and acc[2]["model"] == "gen2-accumulate"
    assert rep[2]["train"]["size"] == rep[1]["n_rows"]  # replace: the previous generation's samples only
    assert acc[2]["train"]["size"] == acc[0]["n_rows"] + acc[1]["n_rows"]  # accumulate: every earlier one
    assert acc[2]["train"]["size"] > acc[1]["train"]["size"]
    r = rep[2]
    assert r["perplexity"]["tokens"] == 63 and r["perplexity"]["value"] > 0
    assert set(r["answers"]) == {"n", "n_sampled", "entropy_bits", "distinct", "tail_mass", "js_to_gen0", "top"}
    assert r["answers"]["n_sampled"] == 4 and set(r["answers"]["tail_mass"]) >= {"k", "n", "rate", "ci95"}
    assert set(r["open_ended"]) == {"n", "distinct_1", "distinct_2"} and r["open_ended"]["n"] == 10
    assert r["numbers"]["pass_rate"]["n"] == 4 and "count_per_list" in r["numbers"]
    assert json.loads((tmp_path / "summary.json").read_text())["regimes"]["replace"][2]["model"] == "gen2-replace"
    assert (tmp_path / "collapse_chat.png").stat().st_size > 0
    assert (tmp_path / "students" / "gen1" / "adapter").is_dir()
    assert len((tmp_path / "samples" / "gen0.jsonl").read_text().splitlines()) == rep[0]["n_rows"]
    assert "accumulate" in capsys.readouterr().out
    stage = json.loads((tmp_path / "manifest.json").read_text())["stages"]["collapse-chat"]
    assert set(stage["dataset_hashes"]) == {"gen0.jsonl", "gen1.jsonl", "gen2-replace.jsonl", "gen2-accumulate.jsonl"}
    assert stage["seed"] == summary["seed"]


def test_config_errors():
    with pytest.raises(TraitbenchError, match="regimes"):
        run_study("collapse-chat", ["regimes=[replace, replace]"], "unused")
    with pytest.raises(TraitbenchError, match="train.mode"):
        run_study("collapse-chat", ["train.mode=distill"], "unused")
    assert ChatCollapseConfig().model_dump()["train"]["epochs"] == 1
