"""Experiments register in one place: a new command is one module (tests/toy_experiment.py) plus one registry line,
and the command line builds its subcommand, help, config loading, options, output folder and manifest from it."""

import json
from pathlib import Path

import pytest

from traitbench.cli import build_parser, main
from traitbench.config import RunConfig, load_config
from traitbench.experiments.registry import EXPERIMENTS, Experiment, Option, _load

TOY = Experiment("toy", "toy_experiment:ToyConfig", "toy_experiment:run", "squares", "Write the first n squares.",
                 "writes: runs/toy/toy.json", "traitbench toy --set n=4",
                 options=(Option(("--shout",), "shout", "print in capitals", {"action": "store_true"}),))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(EXPERIMENTS, "toy", TOY)


def test_a_registered_experiment_is_a_command(toy, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["toy", "--set", "n=4", "--shout"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "TOY" and "runs/toy/toy.json" in printed
    assert json.loads((tmp_path / "runs/toy/toy.json").read_text()) == {"squares": [0, 1, 4, 9]}
    manifest = json.loads((tmp_path / "runs/toy/manifest.json").read_text())
    assert manifest["config"] == {"name": "toy", "runs_dir": "runs", "n": 4}
    assert manifest["stages"]["toy"]["n"] == 4 and manifest["stages"]["toy"]["seconds"] >= 0


def test_out_names_the_folder_and_the_help_comes_from_the_registry(toy, tmp_path, capsys):
    assert main(["toy", "--out", str(tmp_path / "elsewhere")]) == 0
    assert json.loads((tmp_path / "elsewhere/toy.json").read_text()) == {"squares": [0, 1, 4]}
    assert json.loads((tmp_path / "elsewhere/manifest.json").read_text())["config"]["runs_dir"] == str(tmp_path)
    help_text = build_parser()._subparsers._group_actions[0].choices["toy"].format_help()
    assert "Write the first n squares." in help_text and "traitbench toy --set n=4" in help_text
    assert "--shout" in help_text and "--out" in help_text


def test_bad_toy_config_is_one_line(toy, capsys):
    assert main(["toy", "--set", "n=0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("traitbench: error:") and len(err.strip().splitlines()) == 1


def test_every_registered_experiment_loads_its_config_and_function():
    """Each command's packaged config (or code defaults) loads into its RunConfig, and its run function exists."""
    for exp in EXPERIMENTS.values():
        cfg = load_config(exp.config)
        assert isinstance(cfg, RunConfig) and callable(_load(exp.function)), exp.name
        assert cfg.out == (None if cfg.name is None else Path(cfg.runs_dir) / cfg.name), exp.name
