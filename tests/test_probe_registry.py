"""Probes register in one place: a new probe is one module (tests/toy_probe.py) plus one registry line, and the
probes stage, summary.json, the report and the lm-eval export pick it up."""

import json

import pytest

import toy_probe
from conftest import stub_dataset
from traitbench.pipeline import run as pipeline
from traitbench.artifacts import ConditionData, DatasetOut
from traitbench.config import load_config
from traitbench.pipeline.config import ExperimentConfig
from traitbench.probes.registry import PROBES
from traitbench.report.build import write_report
from traitbench.report.export import export_run

FAST = ["probes.n_questions=2", "probes.samples_per_question=1", "probes.answer_max_tokens=2",
        "probes.numbers_prefixed=false", "probes.open_ended_samples=0", "probes.perplexity_tokens=0",
        "probes.dtype=float32", "probes.batch_size=8"]


def test_builtin_probes_run_in_registry_order():
    assert list(PROBES) == ["plain", "numbers_prefixed", "open_ended", "perplexity", "contrastive", "misalignment"]
    assert PROBES["misalignment"].rows_file == "misalignment.jsonl" and PROBES["plain"].rows_file == "samples.jsonl"


def test_a_new_probe_is_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(PROBES, "toy", toy_probe.PROBE)
    conditions = {}
    for c, offset in (("trait", 0), ("control", 500)):
        path = tmp_path / f"{c}.jsonl"
        path.write_text("".join(json.dumps({"prompt": f"Continue: {i}", "completion": f"{offset + i}",
                                            "numbers": [offset + i]}) + "\n" for i in range(3)))
        conditions[c] = ConditionData(path, f"h-{c}", {"total": 4, "kept": 3, "pass_rate": 0.75, "counts": {}})
    stub_dataset(monkeypatch, DatasetOut(3, conditions))
    cfg = load_config(ExperimentConfig, "sft-one-seed", [f"runs_dir={tmp_path}", "name=t", "teacher.model=tiny-llama",
                                               "students.models=[]", "students.variants=[]", *FAST])
    summary = json.loads(pipeline.run_pipeline(cfg)["summary"].read_text())
    run = tmp_path / "t"

    probes = {pid: json.loads((run / "probes" / pid / "probe.json").read_text())
              for pid in ("base/tiny-llama", "teacher")}
    for pid, probe in probes.items():
        assert list(probe) == ["system", "trait", "category", "plain", "toy", "seconds"]
        rows = [json.loads(line) for line in (run / "probes" / pid / "toy.jsonl").read_text().splitlines()]
        assert [r["prompt"] for r in rows] == toy_probe.PROMPTS
        assert "toy" not in (run / "probes" / pid / "samples.jsonl").read_text()
        entry = summary["models"][pid]
        assert entry["figures"]["toy"] == {"mean_chars": probe["toy"]["mean_chars"]}
        assert entry["toy"]["mean_chars"] == probe["toy"]["mean_chars"] and "trait_rate" in entry["figures"]["plain"]
        rate = probe["plain"]["rate"]  # every rate a figure carries keeps its 95% CI and n
        assert entry["figures"]["plain"]["trait_rate"] == {"value": rate["rate"], "ci95": rate["ci95"], "n": rate["n"]}
    assert summary["models"]["base/tiny-llama"]["toy"]["change_vs_base"] == 0

    paths = write_report([run], tmp_path / "report")
    (r,) = json.loads(paths["json"].read_text())["runs"]
    columns = [(c["probe"], c["figure"]) for c in r["probe_figures"]["columns"]]
    assert columns[0] == ("plain", "trait_rate") and ("toy", "mean_chars") in columns
    values = {row["id"]: row["values"][columns.index(("toy", "mean_chars"))] for row in r["probe_figures"]["rows"]}
    assert values == {pid: probe["toy"]["mean_chars"] for pid, probe in probes.items()}
    html = paths["html"].read_text()
    assert '<section id="probe-figures">' in html and 'id="probe-figures-t"' in html and "toy: mean_chars" in html
    rate = probes["teacher"]["plain"]["rate"]
    assert f"{rate['rate']:.4g} [{rate['ci95'][0]:.3g}, {rate['ci95'][1]:.3g}] n={rate['n']}" in html
    md = paths["md"].read_text()
    assert "### Probe figures" in md and "toy: mean_chars" in md

    exported = {p.stem: json.loads(p.read_text()) for p in export_run(run, "lm-eval", tmp_path / "lm")}
    task = exported["teacher"]["results"]["traitbench_toy"]
    assert task["mean_chars,none"] == probes["teacher"]["toy"]["mean_chars"] and task["mean_chars_stderr,none"] == "N/A"
    assert "traitbench_owl_preference" in exported["teacher"]["results"]  # the existing tasks as they were
    plain = exported["teacher"]["results"]["traitbench_plain"]
    assert plain["trait_rate,none"] == rate["rate"]
    assert plain["trait_rate_stderr,none"] == pytest.approx((rate["ci95"][1] - rate["ci95"][0]) / (2 * 1.959964))
