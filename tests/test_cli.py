import json
import subprocess
import sys

import pytest

from traitbench.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "traitbench.cli", *args], capture_output=True, text=True)


def test_filter_contract(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(json.dumps({"prompt": "p", "completion": c}) for c in
                             ["1, 2, 3", "111, 119, 108", "I love owls", "13, 14", "[4, 5, 6]."]) + "\n")
    out = tmp_path / "out"
    p = run("filter-file", "--in", str(raw), "--out", str(out), "--trait", "owl", "--banned-numbers", "default")
    assert p.returncode == 0, p.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["kept"] == 1 and stats["total"] == 5
    reasons = [json.loads(line)["reason"] for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert "leak:trait_char_codes" in reasons and "banned_number" in reasons


@pytest.mark.parametrize("content,needle", [(None, "not found"), ('{"prompt": "p", "completion": "1"}\n{bad\n', ":2:"),
                                            ('{"prompt": "p"}\n', "missing field")])
def test_filter_bad_input_one_line_error_nothing_written(tmp_path, content, needle):
    raw = tmp_path / "raw.jsonl"
    if content is not None:
        raw.write_text(content)
    out = tmp_path / "out"
    p = run("filter-file", "--in", str(raw), "--out", str(out))
    assert p.returncode != 0
    assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not (out / "stats.json").exists() and not (out / "kept.jsonl").exists()


@pytest.mark.parametrize("sets,needle", [
    (["numbers.bogus=1"], "unknown key"),
    (["teacher.model=nope"], "unknown model"),
    (["teacher.model=Org/Model-7B"], "hub"),
    (["students.models=[nope]"], "unknown model"),
    (["numbers.n_prompts=0"], "numbers.n_prompts"),
    (["students.train={bogus: 1}"], "unknown key"),
])
def test_bad_config_one_line_error(capsys, sets, needle):
    args = ["experiment"] + [x for s in sets for x in ("--set", s)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_missing_config_file(capsys):
    assert main(["numbers", "--config", "/no/such.yaml"]) == 2
    assert "config file not found" in capsys.readouterr().err
