"""Packaged configs, `base:` inheritance and `traitbench config show`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from traitbench.cli import main
from traitbench.experiments.registry import EXPERIMENTS
from traitbench.config import PACKAGED, load_config, packaged_configs, read_config
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import ExperimentConfig


def test_sft_one_seed_yaml_is_the_code_default():
    assert load_config(ExperimentConfig, "sft-one-seed", ["name=default"]) == ExperimentConfig()


def test_the_default_experiment_is_a_seed_level_transmission_test():
    cfg = load_config(ExperimentConfig)  # no config: the packaged default
    assert cfg == load_config(ExperimentConfig, "default") and cfg.name == "default"
    assert len(cfg.students.seeds) >= 3 and cfg.students.models == ["smollm2-135m", "gemma3-270m"]
    assert [(v.name, v.train["mode"], v.train["lora_r"]) for v in cfg.students.variants] == [("distill-r64", "distill", 64)]
    assert cfg.probes.first_question == 25  # held-out questions


@pytest.mark.parametrize("name", packaged_configs())
def test_every_packaged_config_validates(name, capsys):
    assert main(["config", "show", "--config", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ") and yaml.safe_load(out)  # valid YAML after the header comment


def test_derived_configs_state_only_what_differs():
    mis = read_config("judged-probe")
    assert mis["students"]["models"] == ["smollm2-135m", "gemma3-270m"]  # from base: sft-one-seed
    assert "base" not in mis and mis["probes"]["misalignment"]["enabled"] is True
    assert "students" not in yaml.safe_load((PACKAGED / "judged-probe.yaml").read_text())


def test_base_merges_mappings_and_replaces_lists(tmp_path):
    (tmp_path / "parent.yaml").write_text("name: p\nstudents: {seeds: [0, 1], train: {epochs: 2, lr: 0.001}}\n")
    (tmp_path / "child.yaml").write_text("base: parent\nname: c\nstudents: {seeds: [5], train: {lr: 0.01}}\n")
    cfg = load_config(ExperimentConfig, tmp_path / "child.yaml", ["students.train.batch_size=4"])
    assert cfg.name == "c" and cfg.students.seeds == [5]
    assert cfg.students.train == {"epochs": 2, "lr": 0.01, "batch_size": 4}
    (tmp_path / "packaged-base.yaml").write_text("base: transmission\nname: mine\n")
    assert load_config(ExperimentConfig, tmp_path / "packaged-base.yaml").students.seeds == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("text, message", [
    ("base: loop\n", "base chain loops"), ("base: missing\n", "config file not found: missing"),
    ("base: [1]\n", "base must be a config name"), ("base: ''\n", "base must be a config name")])
def test_bad_base_is_one_line_error(tmp_path, text, message):
    (tmp_path / "loop.yaml").write_text(text)
    with pytest.raises(TraitbenchError, match=message):
        load_config(ExperimentConfig, tmp_path / "loop.yaml")


def test_config_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(ExperimentConfig, "configs/transmission.yaml").name == "transmission"
    assert load_config(ExperimentConfig, "transmission").name == "transmission"


def test_config_command_follows_the_file_name():
    from traitbench.cli import _config_command

    assert _config_command("collapse-lm-large") == "collapse-lm" and _config_command("bench-gpu.yaml") == "bench"
    assert _config_command("configs/transmission.yaml") == "experiment" and _config_command(None) == "experiment"
    assert set(EXPERIMENTS) >= {"experiment", "audit", "bench"}


def test_config_show_is_the_same_outside_the_repository(tmp_path):
    def show(cwd):
        return subprocess.run([sys.executable, "-m", "traitbench.cli", "config", "show", "--set", "seed=3"], cwd=cwd,
                              capture_output=True, text=True, check=True).stdout

    inside, outside = show(PACKAGED.parent.parent), show(tmp_path)
    assert inside == outside and "seed: 3" in outside and "demonstrations: 4" in outside
