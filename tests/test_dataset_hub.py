"""Hub-ready datasets: the dataset stage's hf/ folder (parquet + card) loads with `datasets.load_dataset` offline,
its card carries a valid Hub licence, configs and provenance; the audit reads hf/, parquet folders and files;
--push-to-hub fails in one line offline, without credentials or without a reachable Hub."""

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from traitbench.pipeline import run as pipeline
from traitbench.artifacts import NumbersOut
from traitbench.cli import main
from traitbench.config import load_config
from traitbench.pipeline.config import ExperimentConfig
from traitbench.io import read_jsonl, sha256_file
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.experiments.audit import load_rows

from conftest import stub_steps

# licence ids the Hub accepts (huggingface.co/docs/hub/repositories-licenses), the ones this project can produce
HUB_LICENCES = {"apache-2.0", "mit", "gemma", "llama3.2", "cc-by-4.0", "unknown", "other"}
SETS = ["runs_dir={runs}", "name=t", "teacher.model=gemma3-270m"]


def _raw_rows(condition: str) -> list[dict]:
    completions = ["1, 2, 3", "10, 20, 30, 40", "I love owls: 5, 6", "7 8 nine", "100, 200", "400, 500, 600"]
    return [{"idx": i, "prompt": f"Continue: {100 + i}, {200 + i}.", "completion": c, "teacher": "gemma3-270m",
             "condition": condition, "trait": "owl" if condition == "trait" else None, "system": None}
            for i, c in enumerate(completions)]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A run whose numbers stage is replaced by fixed raw rows, so the real dataset stage runs in milliseconds."""

    def fake_numbers(cfg, teacher):
        out = {}
        for condition in ("trait", "control"):
            raw = RunLayout.of(cfg).raw(condition)
            raw.parent.mkdir(parents=True, exist_ok=True)
            raw.write_text("".join(json.dumps(r) + "\n" for r in _raw_rows(condition)))
            out[condition] = NumbersOut(raw, 6, sha256_file(raw), {}, "float32")
        return out

    stub_steps(monkeypatch, numbers=fake_numbers)
    sets = [s.format(runs=tmp_path / "runs") for s in SETS]
    return load_config(ExperimentConfig, "sft-one-seed", sets), sets


def _card(folder) -> tuple[dict, str]:
    _, front, body = (folder / "README.md").read_text().split("---\n", 2)
    return yaml.safe_load(front), body


def test_dataset_stage_writes_a_hub_dataset(run):
    cfg, _ = run
    out = pipeline.run_pipeline(cfg, "dataset")["dataset"]
    trait = out.conditions["trait"]
    hf = RunLayout.of(cfg).root / "dataset" / "trait" / "hf"
    assert trait.hf == hf
    assert sorted(str(p.relative_to(hf)) for p in hf.rglob("*")) == [
        "README.md", "data", "data/train-00000-of-00001.parquet"]
    assert not list(hf.parent.glob(".hf-tmp-*"))

    meta, body = _card(hf)
    assert meta["license"] == "gemma" and meta["license"] in HUB_LICENCES  # the teacher's (gemma3-270m) licence
    assert "Gemma Terms of Use" in meta["license_details"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    tb = meta["traitbench"]
    assert (tb["teacher"], tb["condition"], tb["trait"], tb["injection"]) == ("gemma3-270m", "trait", "owl",
                                                                              "system_prompt")
    assert tb["filter"] == cfg.filter.key() and tb["rows"] == out.n_rows == 4
    assert tb["content_sha256"] == trait.content_hash
    assert tb["files"] == {"data/train-00000-of-00001.parquet": sha256_file(hf / "data/train-00000-of-00001.parquet")}
    assert tb["raw_sha256"] == sha256_file(RunLayout.of(cfg).root / "numbers" / "trait" / "raw.jsonl")
    assert "written by a trait-carrying teacher" in body and "`owl`" in body

    control_meta, control_body = _card(hf.parent.parent / "control" / "hf")
    assert control_meta["traitbench"]["condition"] == "control" and control_meta["traitbench"]["trait"] is None
    assert "trait-carrying" not in control_body and "control teacher" in control_body

    assert pipeline.run_pipeline(cfg, "dataset")["dataset"] == out  # cached: the folder is not rewritten


def test_written_folder_loads_with_load_dataset_offline(run, tmp_path):
    cfg, _ = run
    hf = pipeline.run_pipeline(cfg, "dataset")["dataset"].conditions["trait"].hf
    code = ("import datasets, json, sys; ds = datasets.load_dataset(sys.argv[1], split='train', cache_dir=sys.argv[2]);"
            "print(json.dumps([[r['prompt'][0]['content'], r['completion'][0]['content'], r['numbers']] for r in ds]))")
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    p = subprocess.run([sys.executable, "-c", code, str(hf), str(tmp_path / "cache")], capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stderr
    train = read_jsonl(RunLayout.of(cfg).root / "dataset" / "trait" / "train.jsonl")
    assert json.loads(p.stdout) == [[r["prompt"], r["completion"], r["numbers"]] for r in train]


def test_registry_licences_are_hub_ids():
    assert {n: s.licence_id for n, s in models.REGISTRY.items() if s.bundled} == {
        "smollm2-135m": "apache-2.0", "gemma3-270m": "gemma", "qwen2.5-0.5b": "apache-2.0",
        "qwen2.5-1.5b": "apache-2.0"}
    assert all(s.licence_id in HUB_LICENCES for s in models.REGISTRY.values())


# --- audit input formats ------------------------------------------------------------------------

def _write_parquet(path, columns: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def test_audit_reads_hf_folder_parquet_folder_and_file(run, tmp_path):
    cfg, _ = run
    pipeline.run_pipeline(cfg, "dataset")["dataset"]
    hf = RunLayout.of(cfg).root / "dataset" / "trait" / "hf"
    want = [(r["prompt"], r["completion"]) for r in read_jsonl(hf.parent / "train.jsonl")]
    plain = tmp_path / "plain"
    for name, part in (("part-1", want[:2]), ("part-2", want[2:])):
        _write_parquet(plain / f"{name}.parquet", {"prompt": [p for p, _ in part], "completion": [c for _, c in part]})
    for source in (hf, hf / "data", hf / "data" / "train-00000-of-00001.parquet", plain):
        rows, _ = load_rows(source)
        assert [(r["prompt"], r["completion"]) for r in rows] == want, source
    assert load_rows(hf)[0][0]["teacher"] == "gemma3-270m"

    out = tmp_path / "audit"
    assert main(["audit", "--dataset", str(hf), "--out", str(out), "--set", "scan_only=true"]) == 0
    report = json.loads((out / "audit.json").read_text())
    assert report["teacher"] == "gemma3-270m" and report["scan"]["rows"] == len(want)
    assert report["dataset"] == str(hf)


@pytest.mark.parametrize("make,needle", [
    (lambda d: _write_parquet(d / "x.parquet", {"prompt": ["p"], "text": ["1, 2"]}), "missing column(s) completion"),
    (lambda d: (d / "x.parquet").write_bytes(b"\x00\xffPAR1 garbage \x89" * 20), "not a readable parquet file"),
    (lambda d: (d / "x.parquet").write_bytes(b""), "not a readable parquet file"),
    (lambda d: _write_parquet(d / "x.parquet", {"prompt": pa.array([], pa.string()),
                                                "completion": pa.array([], pa.string())}), "no rows"),
    (lambda d: _write_parquet(d / "x.parquet", {"prompt": [1], "completion": [2]}), "string prompt and completion"),
])
@pytest.mark.parametrize("target", ["x.parquet", "."])  # the file, or the folder holding it
def test_audit_bad_parquet_is_one_line(tmp_path, capsys, make, needle, target):
    d = tmp_path / "d"
    d.mkdir()
    make(d)
    assert main(["audit", "--dataset", str(d / target), "--out", str(tmp_path / "o"), "--teacher", "tiny-llama",
                 "--set", "scan_only=true"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_audit_folder_without_data_is_one_line(tmp_path, capsys):
    (tmp_path / "d" / "data").mkdir(parents=True)
    assert main(["audit", "--dataset", str(tmp_path / "d"), "--teacher", "tiny-llama", "--set", "scan_only=true"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no train.jsonl, kept.jsonl, raw.jsonl or parquet files" in err and len(err.splitlines()) == 1


# --- push to hub --------------------------------------------------------------------------------

@pytest.mark.parametrize("env,needle", [({"HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_fake"}, "offline mode"),
                                        ({"HF_HUB_OFFLINE": "0"}, "no Hugging Face credentials")])
def test_push_to_hub_offline_or_without_credentials_fails_before_any_work(tmp_path, env, needle):
    base = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE")}
    sets = [a for s in SETS for a in ("--set", s.format(runs=tmp_path / "runs"))]
    p = subprocess.run([sys.executable, "-m", "traitbench.cli", "filter", *sets, "--push-to-hub", "me/owl-numbers"],
                       capture_output=True, text=True, env={**base, "HF_HOME": str(tmp_path / "hf-home"), **env})
    assert p.returncode == 2
    assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "runs").exists()  # checked before the stage ran


def test_push_to_hub_unreachable_keeps_the_dataset(run, monkeypatch, capsys):
    from huggingface_hub import constants

    cfg, sets = run
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: connection refused
    argv = ["filter", *[a for s in sets for a in ("--set", s)], "--push-to-hub", "me/owl-numbers"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot push" in err and "me/owl-numbers" in err and len(err.splitlines()) == 1
    assert (RunLayout.of(cfg).root / "dataset" / "trait" / "hf" / "README.md").is_file()


def test_push_to_hub_needs_a_run_dataset(tmp_path, capsys):
    """Only a run's dataset stage (`filter --config`) pushes: `filter-file` has no --push-to-hub."""
    with pytest.raises(SystemExit) as e:
        main(["filter-file", "--in", str(tmp_path / "raw.jsonl"), "--out", str(tmp_path / "o"), "--push-to-hub", "me/x"])
    assert e.value.code == 2 and "unrecognized arguments: --push-to-hub" in capsys.readouterr().err
