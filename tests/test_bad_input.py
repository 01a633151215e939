"""Bad input a user can give — binary or NUL-laden files, deeply nested JSON or YAML, wrong types, run names that
would leave runs/ — is a one-line error with a non-zero exit, never a traceback."""

import json

import pytest

from traitbench.cli import main
from traitbench.config import load_config
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import ExperimentConfig
from traitbench.io import read_jsonl

BINARY = bytes(range(256)) * 4


@pytest.fixture
def corpus(tmp_path):
    files = {
        "binary": BINARY,
        "nul": b'{"prompt": "a\x00b", "completion": "1, 2"}\n',
        "nested_json": ("[" * 100_000 + "]" * 100_000 + "\n").encode(),
        "nested_yaml": ("a: " + "[" * 50_000 + "]" * 50_000 + "\n").encode(),
        "wrong_type_yaml": b"students: {seeds: seven}\n",
        "list_yaml": b"- 1\n- 2\n",
        "not_object_jsonl": b"[1, 2]\n",
        "nested_object_json": ('{"a":' * 100_000 + "1" + "}" * 100_000 + "\n").encode(),
        "nul_bytes": b"\x00" * 64,
        "wrong_type_jsonl": b'{"prompt": 1, "completion": ["x"]}\n',
        "huge_int_yaml": b"seed: " + b"9" * 5000 + b"\n",
        "nul_escape_yaml": b'trait: {word: "o\\0wl"}\n',
        "nan_yaml": b"trait: {word: owl}\nnumbers: {generation: {temperature: .nan}}\n",
        "duplicate_key_yaml": b"seed: 1\ntrait: {word: owl}\nseed: 2\n",
    }
    out = {}
    for name, data in files.items():
        out[name] = tmp_path / name
        out[name].write_bytes(data)
    return out


@pytest.mark.parametrize("name", ["binary", "nul", "nested_yaml", "wrong_type_yaml", "list_yaml", "huge_int_yaml",
                                  "nul_escape_yaml", "nan_yaml", "nul_bytes", "duplicate_key_yaml"])
def test_config_files(corpus, name, capsys):
    with pytest.raises(TraitbenchError):
        load_config(ExperimentConfig, corpus[name])
    assert main(["teacher", "--config", str(corpus[name])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("traitbench: error:") and "\n" not in err and "Traceback" not in err
    if name not in ("wrong_type_yaml", "nul_escape_yaml", "nan_yaml"):  # an audit config fails on the file itself
        assert main(["audit", "--config", str(corpus[name]), "--dataset", str(corpus["nul"])]) == 2
        _one_line_error(capsys)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("traitbench: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("name", ["binary", "nul", "nested_json", "not_object_jsonl", "nested_object_json", "nul_bytes",
                                  "wrong_type_jsonl"])
def test_jsonl_inputs(corpus, name, tmp_path, capsys):
    if name != "wrong_type_jsonl":  # well-formed rows: the commands reject the field types
        with pytest.raises(TraitbenchError):
            read_jsonl(corpus[name], required=("prompt", "completion"))
    assert main(["filter-file", "--in", str(corpus[name]), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("traitbench: error:") and "\n" not in err
    assert main(["audit", "--dataset", str(corpus[name]), "--teacher", "tiny-llama", "--out", str(tmp_path / "a")]) == 2
    _one_line_error(capsys)
    assert not (tmp_path / "out").exists() and not (tmp_path / "a").exists()


def test_a_line_separator_inside_a_json_string_is_not_a_line_break(tmp_path):
    p = tmp_path / "ok.jsonl"
    p.write_text(json.dumps({"prompt": "a\u2028b", "completion": "1"}, ensure_ascii=False) + "\n")
    assert read_jsonl(p)[0]["prompt"] == "a\u2028b"


@pytest.mark.parametrize("bad", ["../../etc", "/abs", "a/b", ".hidden", "", "x" * 101, "a..b"])
def test_run_names_stay_inside_runs(bad, capsys):
    with pytest.raises(TraitbenchError, match="run name"):
        load_config(ExperimentConfig, None, [f"name={bad!r}" if bad else "name=''"])
    assert main(["teacher", "--set", f"name={bad}"]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


@pytest.mark.parametrize("setting", ["seed=abc", "students.seeds=7", "filter.shuffle=sideways",
                                     "teacher.injection=telepathy", "trait.word=''", "probes.n_questions=-1",
                                     "seed=" + "9" * 5000, "trait.word=" + "[" * 50_000, "trait.word=o\x00wl",
                                     "runs_dir=runs\x00x", "numbers.generation.temperature=.nan",
                                     "numbers.generation.temperature=.inf", "teacher=[1]", "seed.x=1"])
def test_wrong_types_in_set(setting, capsys):
    assert main(["teacher", "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("traitbench: error:") and "\n" not in err


# ----------------------------------------------------------------------------------------- dataset folders
GOOD_ROWS = "".join(json.dumps({"prompt": "Continue: 1, 2", "completion": "3, 4, 5", "teacher": "tiny-llama"}) + "\n"
                    for _ in range(3))


@pytest.mark.parametrize("content", [{}, {"x.bin": BINARY}, {"train.jsonl": BINARY}, {"train.parquet": BINARY},
                                     {"data/train-00000-of-00001.parquet": b"PAR1" + BINARY},
                                     {"kept.jsonl": b"[" * 100_000}])
def test_dataset_folders(content, tmp_path, capsys):
    folder = tmp_path / "dataset"
    folder.mkdir()
    for name, data in content.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    assert main(["audit", "--dataset", str(folder), "--teacher", "tiny-llama", "--set", "scan_only=true",
                 "--out", str(tmp_path / "a")]) == 2
    _one_line_error(capsys)


# --------------------------------------------------------------------------------------------- run folders
DAMAGED_RUNS = {
    "missing": None, "empty": {}, "garbage": {"x.bin": BINARY},
    "summary_binary": {"summary.json": BINARY}, "summary_list": {"summary.json": b"[1, 2]"},
    "summary_nested": {"summary.json": b"[" * 100_000 + b"]" * 100_000},
    "summary_wrong_types": {"summary.json": b'{"name": "r", "trait": {"word": "owl"}, "models": [1], "verdicts": "x"}'},
    "summary_inner_types": {"summary.json": b'{"name": "r", "models": {"a": 1}, "student_effects": [1]}'},
    "manifest_wrong_types": {"manifest.json": b'{"config": {"teacher": 1, "students": 3}, "stages": {}}'},
    "stats_binary": {"dataset/trait/stats.json": BINARY},
    "train_binary": {"manifest.json": b"{}", "dataset/trait/train.jsonl": BINARY},
    "probe_binary": {"summary.json": b"{}", "probes/base/m/probe.json": BINARY, "probes/base/m/samples.jsonl": b""},
    "probe_list": {"probes/base/m/probe.json": b"[1]", "probes/base/m/samples.jsonl": b""},
    "probe_wrong_types": {"probes/base/m/probe.json": b'{"trait": 5, "plain": {"rate": 3}}',
                          "probes/base/m/samples.jsonl": b'{"variant": "plain"}\n'},
    "samples_binary": {"probes/base/m/probe.json": b'{"trait": "owl"}', "probes/base/m/samples.jsonl": BINARY},
}


def _run_folder(tmp_path, files):
    run = tmp_path / "run"
    if files is not None:
        run.mkdir()
        for name, data in files.items():
            (run / name).parent.mkdir(parents=True, exist_ok=True)
            (run / name).write_bytes(data)
    return run


@pytest.mark.parametrize("kind", [k for k in DAMAGED_RUNS if not k.startswith(("probe", "samples"))])
def test_report_on_damaged_run_folders(kind, tmp_path, capsys):
    run = _run_folder(tmp_path, DAMAGED_RUNS[kind])
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 2
    _one_line_error(capsys)


SOUND_PROBE = {"probes/base/m/probe.json": json.dumps({"trait": "owl", "category": "animal", "plain": {
    "rate": {"k": 1, "n": 2, "rate": 0.5}, "trait_logprob": {"per_question": [-1.0, -2.0], "mean": -1.5}}}).encode(),
               "probes/base/m/samples.jsonl": json.dumps({"variant": "plain", "question_idx": 0, "question": "q",
                                                          "answer": "owl", "hit": True}).encode() + b"\n"}
EXPORT_CASES = [(k, f) for k in ("missing", "empty", "garbage", "probe_binary", "probe_list", "probe_wrong_types",
                                 "summary_binary", "summary_list", "summary_nested") for f in ("inspect", "lm-eval")]
EXPORT_CASES += [("samples_binary", "inspect"), ("summary_wrong_types", "lm-eval")]  # the files each format reads


@pytest.mark.parametrize("kind,fmt", EXPORT_CASES)
def test_export_on_damaged_run_folders(kind, fmt, tmp_path, capsys):
    files = DAMAGED_RUNS[kind]
    run = _run_folder(tmp_path, {**SOUND_PROBE, **files} if kind.startswith("summary_") else files)
    assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / "export")]) == 2
    _one_line_error(capsys)
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("fmt", ["inspect", "lm-eval"])
def test_export_of_a_sound_probe(fmt, tmp_path):
    run = _run_folder(tmp_path, SOUND_PROBE)
    assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / "export")]) == 0
    assert [p.parent for p in (tmp_path / "export").iterdir()] == [tmp_path / "export"]


@pytest.mark.parametrize("command", [["report", "{run}", "--out", "{file}"], ["filter-file", "--in", "{rows}", "--out", "{file}"],
                                     ["audit", "--dataset", "{rows}", "--set", "scan_only=true", "--out", "{file}"]])
def test_an_output_folder_that_is_a_file(command, tmp_path, capsys):
    run = _run_folder(tmp_path, {"manifest.json": b'{"config": {}, "stages": {}}'})
    (tmp_path / "rows.jsonl").write_text(GOOD_ROWS)
    (tmp_path / "file").write_text("x")
    args = [a.format(run=run, file=tmp_path / "file", rows=tmp_path / "rows.jsonl") for a in command]
    assert main(args) == 2
    assert "a file is in the way" in _one_line_error(capsys)


def test_default_audit_folder_stays_under_runs(tmp_path, monkeypatch):
    """A teacher named by a path outside the working directory still gets its audit folder under runs/."""
    from traitbench.experiments.audit import AuditConfig, run_audit

    teacher = tmp_path / "elsewhere" / "my-model"
    teacher.mkdir(parents=True)
    (teacher / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "rows.jsonl").write_text(GOOD_ROWS)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    report, _ = run_audit(str(tmp_path / "rows.jsonl"), "../elsewhere/my-model", ["owl"], AuditConfig(scan_only=True))
    out = (work / report["out"]).resolve()
    assert out.parent == (work / "runs").resolve() and out.name.startswith("audit-my-model-")


# -------------------------------------------------------------------------------------------- model names
def test_model_names(tmp_path, capsys):
    (tmp_path / "rows.jsonl").write_text(GOOD_ROWS)
    garbage = tmp_path / "garbage-model"
    garbage.mkdir()
    (garbage / "config.json").write_bytes(BINARY)
    weights = tmp_path / "garbage-weights"
    weights.mkdir()
    (weights / "config.json").write_text('{"model_type": "llama"}')
    (weights / "model.safetensors").write_bytes(BINARY)
    for name in ["no-such-model", str(garbage), str(tmp_path / "missing"), "Org/Not-Cached-7B", "tiny\x00llama",
                 str(tmp_path / "empty-dir")]:
        (tmp_path / "empty-dir").mkdir(exist_ok=True)
        assert main(["teacher", "--set", f"teacher.model={name}", "--set", f"runs_dir={tmp_path}"]) == 2, name
        _one_line_error(capsys)
        assert main(["audit", "--dataset", str(tmp_path / "rows.jsonl"), "--teacher", name]) == 2, name
        _one_line_error(capsys)
    from traitbench.lm import models

    with pytest.raises(TraitbenchError, match="could not load model"):
        models.load(str(weights))


# --------------------------------------------------------------------------------------------- trait specs
@pytest.mark.parametrize("spec", ["", " ", ":", ":animal", "owl:", "a:b:c", "123", "!!!", "ow!l", "o\x00wl", "🦉",
                                  "owl:tree!", "x" * 41, "owl  eagle", "../../etc", "owl/../x"])
def test_audit_trait_specs(spec, tmp_path, capsys):
    (tmp_path / "rows.jsonl").write_text(GOOD_ROWS)
    assert main(["audit", "--dataset", str(tmp_path / "rows.jsonl"), "--trait", spec, "--set", "scan_only=true",
                 "--out", str(tmp_path / "a")]) == 2
    _one_line_error(capsys)
    assert not (tmp_path / "a").exists()


def test_audit_trait_specs_that_are_words(tmp_path):
    from traitbench.experiments.audit import AuditTrait, run_audit

    assert AuditTrait.parse("oak:tree") == AuditTrait(word="oak", category="tree")
    assert AuditTrait.parse(" red panda ").word == "red panda" and AuditTrait.parse("sea-lion").category == "animal"
    (tmp_path / "rows.jsonl").write_text(GOOD_ROWS)
    with pytest.raises(TraitbenchError, match="--teacher is empty"):
        run_audit(str(tmp_path / "rows.jsonl"), " ")
