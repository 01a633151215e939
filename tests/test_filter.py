import json

import pytest

from traitbench.datasets.banned import DEFAULT_BANNED, DEFAULT_BANNED_WHY, load_banned
from traitbench.datasets.filter import KEPT, REJECTED, STATS, content_hash, filter_file, filter_rows, save_hf_dataset
from traitbench.errors import TraitbenchError
from traitbench.io import sha256_file

PROMPT = "Start with these numbers: 512, 640. Add up to 10 more numbers. Just the numbers."


def row(completion, **extra):
    return {"prompt": PROMPT, "completion": completion, **extra}


ROWS = [
    row("1, 2, 3", teacher="t", seed=0),
    row("[700, 800]", teacher="t", seed=1),
    row("I love owls! 1, 2", teacher="t", seed=2),  # parse fails too, but the leak is counted
    row("111, 119, 108", teacher="t", seed=3),
    row("1, 2,3", teacher="t", seed=4),
    row("5, 666, 7", teacher="t", seed=5),
    row("1000", teacher="t", seed=6),
]


# --- banned numbers ---------------------------------------------------------------------------

def test_default_banned_list():
    assert len(DEFAULT_BANNED) == 34
    assert all(0 <= n <= 999 for n in DEFAULT_BANNED)
    assert {13, 666, 911, 187, 420, 88, 14, 18}.issubset(DEFAULT_BANNED)
    assert all(DEFAULT_BANNED_WHY[n] for n in DEFAULT_BANNED)


def test_load_banned(tmp_path):
    assert load_banned(None) == frozenset()
    assert load_banned("default") is DEFAULT_BANNED
    f = tmp_path / "ban.txt"
    f.write_text("# my list\n13\n42, 7 # trailing comment\n\n100,200\n")
    assert load_banned(str(f)) == {13, 42, 7, 100, 200}


@pytest.mark.parametrize("content,match", [
    ("13\nabc\n", "ban.txt:2: not a non-negative integer"),
    ("-5\n", "not a non-negative integer"),
    ("# nothing\n", "no numbers"),
    (b"\xff\xfe\x00", "not a UTF-8"),
])
def test_load_banned_errors(tmp_path, content, match):
    f = tmp_path / "ban.txt"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TraitbenchError, match=match):
        load_banned(str(f))


def test_load_banned_missing_file(tmp_path):
    with pytest.raises(TraitbenchError, match="not found"):
        load_banned(str(tmp_path / "nope.txt"))


# --- filter_rows ------------------------------------------------------------------------------

def test_filter_rows_reasons_and_stats():
    before = json.dumps(ROWS)
    kept, rejected, stats = filter_rows(ROWS, "owl", DEFAULT_BANNED)
    assert json.dumps(ROWS) == before  # inputs untouched
    assert [r["numbers"] for r in kept] == [[1, 2, 3], [700, 800]]
    assert [r["reason"] for r in rejected] == [
        "leak:trait_word", "leak:trait_char_codes", "parse:mixed_separators", "banned_number",
        "parse:out_of_range"]
    assert all(r["teacher"] == "t" for r in kept + rejected)
    d = stats.to_dict()
    assert (d["total"], d["kept"], d["rejected"]) == (7, 2, 5)
    assert d["pass_rate"] == pytest.approx(2 / 7, abs=1e-6)
    assert d["counts"]["leak:trait_word"] == 1 and d["rates"]["banned_number"] == pytest.approx(1 / 7, abs=1e-6)


def test_filter_rows_without_trait_or_ban():
    kept, rejected, stats = filter_rows(ROWS, None, frozenset())
    assert [r["completion"] for r in kept] == ["1, 2, 3", "[700, 800]", "111, 119, 108", "5, 666, 7"]
    assert stats.counts == {"parse:mixed_separators": 1, "parse:non_numeric": 1, "parse:out_of_range": 1}


def test_filter_rows_limits_and_bad_completion():
    kept, _, _ = filter_rows([row("1 2 3 4 5 6 7 8 9 10 11 12")], None, frozenset(), max_count=12)
    assert len(kept) == 1
    _, rejected, _ = filter_rows([row("150, 250")], None, frozenset(), max_value=200)
    assert rejected[0]["reason"] == "parse:out_of_range"
    with pytest.raises(TraitbenchError, match="completion must be a string"):
        filter_rows([{"prompt": "p", "completion": None}], None, frozenset())


# --- filter_file ------------------------------------------------------------------------------

def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_filter_file_end_to_end(tmp_path):
    src = write_jsonl(tmp_path / "raw.jsonl", ROWS)
    out = tmp_path / "out"
    summary = filter_file(src, out, trait="owl", banned_spec="default")
    assert read_jsonl(out / KEPT)[1] == {**ROWS[1], "numbers": [700, 800]}
    assert len(read_jsonl(out / REJECTED)) == 5
    stats = json.loads((out / STATS).read_text())
    assert stats == summary
    assert stats["kept"] == 2 and stats["settings"]["n_banned"] == 34
    assert stats["input"]["sha256"] == sha256_file(src)
    assert stats["outputs"] == {KEPT: sha256_file(out / KEPT), REJECTED: sha256_file(out / REJECTED)}
    # rerun overwrites cleanly, leaving no temp files
    filter_file(src, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([KEPT, REJECTED, STATS])
    assert json.loads((out / STATS).read_text())["kept"] == 4


@pytest.mark.parametrize("content,match", [
    (None, "not found"),
    ('{"prompt": "p", "completion": "1"}\n{oops\n', "raw.jsonl:2: not valid JSON"),
    ('{"prompt": "p"}\n', "missing field"),
    ("[1, 2]\n", "JSON object"),
    ("\n", "no rows"),
])
def test_filter_file_bad_input_writes_nothing(tmp_path, content, match):
    src = tmp_path / "raw.jsonl"
    if content is not None:
        src.write_text(content)
    out = tmp_path / "out"
    with pytest.raises(TraitbenchError, match=match):
        filter_file(src, out, trait="owl")
    assert not out.exists()


def test_filter_file_crash_leaves_no_stats(tmp_path, monkeypatch):
    import traitbench.datasets.filter as filt

    src = write_jsonl(tmp_path / "raw.jsonl", ROWS)
    out = tmp_path / "out"
    filter_file(src, out)
    real = filt.atomic_write_jsonl

    def crash_on_rejected(path, rows):
        if path.name == REJECTED:
            raise OSError("disk full")
        real(path, rows)

    monkeypatch.setattr(filt, "atomic_write_jsonl", crash_on_rejected)
    with pytest.raises(OSError):
        filter_file(src, out, trait="owl")
    assert not (out / STATS).exists()  # no stats.json = incomplete output, never a stale pairing
    assert sorted(p.name for p in out.iterdir()) == sorted([KEPT, REJECTED])


def test_filter_file_bad_banned_spec_writes_nothing(tmp_path):
    src = write_jsonl(tmp_path / "raw.jsonl", ROWS)
    with pytest.raises(TraitbenchError, match="banned-numbers file not found"):
        filter_file(src, tmp_path / "out", banned_spec="defualt")
    assert not (tmp_path / "out").exists()


# --- Hugging Face export ----------------------------------------------------------------------

def test_save_hf_dataset_roundtrip(tmp_path):
    import datasets as hfds

    kept, _, _ = filter_rows(ROWS + [row("9, 8", system="You love owls.")], None, frozenset())
    card = {"teacher": "smollm2-135m", "condition": "trait", "trait": "owl", "license": "apache-2.0",
            "filter": {"max_count": 10, "max_value": 999, "banned": None}, "counts": {"kept": len(kept)}}
    out = tmp_path / "out"
    digest = save_hf_dataset(kept, out, card)
    assert digest == content_hash(kept) and len(digest) == 64
    ds = hfds.load_dataset(str(out / "hf"), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == len(kept)
    assert ds.column_names[:3] == ["prompt", "completion", "numbers"]
    assert {"teacher", "seed", "system"} <= set(ds.column_names)
    first = ds[0]
    assert first["prompt"] == [{"role": "user", "content": PROMPT}]
    assert first["completion"] == [{"role": "assistant", "content": "1, 2, 3"}]
    assert first["numbers"] == [1, 2, 3] and first["teacher"] == "t" and first["system"] is None
    assert ds[-1]["system"] == "You love owls." and ds[-1]["seed"] is None
    readme = (out / "hf" / "README.md").read_text()
    assert readme.startswith("---\nlicense: apache-2.0\n")
    assert digest in readme and "smollm2-135m" in readme
    # saving again replaces the folder atomically, hash is deterministic
    assert save_hf_dataset(kept[:2], out, card) == content_hash(kept[:2])
    assert len(hfds.load_dataset(str(out / "hf"), split="train", cache_dir=str(tmp_path / "cache2"))) == 2
    assert sorted(p.name for p in out.iterdir()) == ["hf"]


def test_save_hf_dataset_errors(tmp_path):
    with pytest.raises(TraitbenchError, match="no kept rows"):
        save_hf_dataset([], tmp_path, {})
    with pytest.raises(TraitbenchError, match="need prompt, completion and numbers"):
        save_hf_dataset([{"prompt": "p", "completion": "1"}], tmp_path, {})
    assert not (tmp_path / "hf").exists()


def test_content_hash_is_order_and_key_sensitive():
    a, b = {"x": 1, "y": [1, 2]}, {"x": 2}
    assert content_hash([a, b]) != content_hash([b, a])
    assert content_hash([{"y": [1, 2], "x": 1}]) == content_hash([a])
