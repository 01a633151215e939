"""Bad input a user can give — binary or NUL-laden files, deeply nested JSON or YAML, wrong types, run names that
would leave runs/ — is a one-line error with a non-zero exit, never a traceback."""

import json

import pytest

from traitbench.cli import main
from traitbench.config import load_config
from traitbench.errors import TraitbenchError
from traitbench.experiment import ExperimentConfig
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
    }
    out = {}
    for name, data in files.items():
        out[name] = tmp_path / name
        out[name].write_bytes(data)
    return out


@pytest.mark.parametrize("name", ["binary", "nul", "nested_yaml", "wrong_type_yaml", "list_yaml"])
def test_config_files(corpus, name, capsys):
    with pytest.raises(TraitbenchError):
        load_config(ExperimentConfig, corpus[name])
    assert main(["teacher", "--config", str(corpus[name])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("traitbench: error:") and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["binary", "nul", "nested_json", "not_object_jsonl"])
def test_jsonl_inputs(corpus, name, tmp_path, capsys):
    with pytest.raises(TraitbenchError):
        read_jsonl(corpus[name], required=("prompt", "completion"))
    assert main(["filter", "--in", str(corpus[name]), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("traitbench: error:") and "\n" not in err


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
                                     "teacher.injection=telepathy", "trait.word=''", "probes.n_questions=-1"])
def test_wrong_types_in_set(setting, capsys):
    assert main(["teacher", "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("traitbench: error:") and "\n" not in err
