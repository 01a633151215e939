"""The public interface: every subcommand's --help says what it writes with an example, the package exports the
functions users call without importing torch, and docs/api.md's example runs on the tiny models."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import traitbench
from traitbench.cli import build_parser

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _subcommands():
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_help_says_what_it_writes_with_an_example(name):
    sp = _subcommands()[name]
    text = sp.format_help()
    assert sp.description and len(sp.description.split()) >= 8, name
    assert re.search(r"^writes: \S", text, re.M), f"{name}: no 'writes:' line"
    example = re.search(r"^example:\n  (.+)$", text, re.M)
    assert example and example.group(1).startswith(f"traitbench {name}"), f"{name}: no example line"
    # the example parses as a command line of this very subcommand
    args = build_parser().parse_args(example.group(1).split()[1:])
    assert args.command == name


def test_import_traitbench_does_not_import_torch():
    code = ("import sys, traitbench; print('torch' in sys.modules, 'transformers' in sys.modules); "
            "traitbench.load_config, traitbench.TraitbenchError; print('torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "False", "False"]  # loading a config needs no torch either


def test_the_command_line_and_the_configs_do_not_import_torch():
    """`traitbench --help` and `traitbench config show` start without torch: the configs live in light modules."""
    code = "import sys, traitbench.cli, traitbench.pipeline.config; print('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False"]


def test_exports_are_the_implementations():
    from traitbench import config, errors
    from traitbench.pipeline import run as pipeline
    from traitbench.lm import models
    from traitbench.probes import run
    from traitbench.experiments import audit
    from traitbench.report import build, export
    from traitbench.student import train

    assert traitbench.run_experiment is pipeline.run_experiment and traitbench.load_model is models.load
    assert traitbench.train_student is train.train_student and traitbench.probe_model is run.probe_model
    assert traitbench.run_audit is audit.run_audit and traitbench.load_config is config.load_config
    assert traitbench.write_report is build.write_report and traitbench.export_run is export.export_run
    assert traitbench.TraitbenchError is errors.TraitbenchError
    assert set(traitbench.__all__) <= set(dir(traitbench))
    with pytest.raises(AttributeError):
        traitbench.no_such_function


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)


def test_docs_example_runs_on_tiny_models(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_examples()[0], str(DOCS), "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"^final loss \d", out, re.M) and re.search(r"^owl rate [\d.]+$", out, re.M)
    assert "exit status 0" in out or "exit status 1" in out
    assert (tmp_path / "runs/api-demo/student/adapter/adapter_config.json").is_file()
    assert (tmp_path / "runs/api-demo/probe/probe.json").is_file()
    assert (tmp_path / "runs/api-demo/audit/audit.md").is_file()


def test_docs_experiment_example_loads_its_config(tmp_path, monkeypatch):
    """The real-model example as written, with the (hours-long) run replaced by a summary already written."""
    calls = []

    def run_experiment(cfg):
        calls.append(cfg)
        summary = tmp_path / cfg.name / "summary.json"
        summary.parent.mkdir(parents=True)
        summary.write_text('{"name": "%s"}' % cfg.name)
        summary.with_suffix(".md").write_text("# summary\n")
        return summary

    monkeypatch.setattr(traitbench, "run_experiment", run_experiment)
    exec(compile(_examples()[1], str(DOCS), "exec"), {})
    assert calls[0].name == "transmission-seed1" and calls[0].seed == 1
    assert (tmp_path / "transmission-seed1" / "report.html").is_file()
