"""Austen corpus: .rdb extraction, chapter split, HF folder, missing-corpus errors (offline, synthetic data)."""

import json
import struct
import zlib

import pytest

from traitbench.corpora import austen
from traitbench.errors import TraitbenchError

TITLES = ["SENSE AND SENSIBILITY", "PRIDE AND PREJUDICE", "MANSFIELD PARK", "EMMA", "NORTHANGER ABBEY", "Persuasion"]


def xdr_strings(lines):
    """R serialize() (XDR, version 3) of a character vector; None is NA."""
    out = b"X\n" + struct.pack(">iii", 3, 0x040300, 0x030500) + struct.pack(">i", 5) + b"UTF-8"
    out += struct.pack(">ii", 0x10, len(lines))
    for s in lines:
        if s is None:
            out += struct.pack(">ii", 0x9, -1)
        else:
            b = s.encode()
            out += struct.pack(">ii", 0x9 | (8 << 12), len(b)) + b
    return out


def xdr_ints(values):
    return b"X\n" + struct.pack(">iii", 2, 0x040300, 0x020300) + struct.pack(">ii", 13, len(values)) + b"".join(
        struct.pack(">i", v) for v in values)


def blob(raw):
    return struct.pack(">I", len(raw)) + zlib.compress(raw)


def novel(title, n_chapters, volume_every=0):
    lines = [title, "", "By Jane Austen", "", ""]
    for i in range(1, n_chapters + 1):
        if volume_every and (i - 1) % volume_every == 0:
            lines += [f"VOLUME {(i - 1) // volume_every + 1}", ""]
        lines += [f"CHAPTER {i}" if i % 2 else f"Chapter {i}", "", f"Para one of {title} ch {i},", "second line.",
                  "", f"Para two, £{i}.", ""]
    return lines + ["", "THE END", "", "A note that is not Austen's."]


@pytest.fixture
def rdb(tmp_path):
    objs = [novel(t, 12 if t == "EMMA" else 2, volume_every=6 if t == "EMMA" else 0) for t in TITLES]
    objs[1] = objs[1][:3] + [None] + objs[1][3:]  # an NA line
    data = b"".join(blob(xdr_strings(o)) for o in objs)
    data += blob(xdr_ints([1, 2, 3]))  # not a character vector: skipped
    data += blob(xdr_strings(objs[3]))  # a second copy of Emma: skipped as a duplicate
    path = tmp_path / "Rdata.rdb"
    path.write_bytes(data)
    return path


def test_extract_rdb(rdb):
    objs = austen.extract_rdb(rdb)
    assert list(objs) == ["object1", "object2", "object3", "object4", "object5", "object6", "object8"]
    assert objs["object4"][0] == "EMMA" and "Para two, £3." in objs["object4"]
    assert objs["object2"][3] == ""  # NA -> ""
    novels, skipped = austen.identify_novels(objs)
    assert [n.title for n in novels] == list(austen.NOVELS)
    assert "duplicate" in skipped["object8"]


def test_chapter_split_every_tenth_heldout(rdb):
    emma = austen.extract_rdb(rdb)["object4"]
    chapters = austen.split_chapters(emma)
    assert [c.number for c in chapters] == list(range(1, 13))
    assert [c.number for c in chapters if c.heldout] == [10]
    assert chapters[6].heading == "VOLUME 2, CHAPTER 7"
    assert chapters[0].paragraphs == ["Para one of EMMA ch 1, second line.", "Para two, £1."]
    assert "THE END" not in chapters[-1].text and "not Austen" not in chapters[-1].text


def test_hf_folder_loads_and_missing_corpus_error(rdb, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAITBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(TraitbenchError, match="traitbench corpus fetch") as e:
        austen.austen_text("train")
    assert "\n" not in str(e.value)

    calls = []

    def fake_download(dest):
        calls.append(dest)
        (dest / "x.deb").write_bytes(b"deb")
        return dest / "x.deb"

    monkeypatch.setattr(austen, "_download_deb", fake_download)
    monkeypatch.setattr(austen, "_unpack_rdb", lambda deb, d: rdb)
    out = austen.fetch_austen()
    assert out == tmp_path / "cache" / "corpora" / "austen" and austen.fetch_austen() == out and len(calls) == 1

    src = json.loads((out / "source.json").read_text())
    assert src["splits"]["heldout"]["chapters"] == 1 and src["splits"]["train"]["chapters"] == 11 + 5 * 2
    assert len((out / "novels.jsonl").read_text().splitlines()) == 6
    card = (out / "README.md").read_text()
    assert "license: other" in card and "Debian packaging MIT" in card and "path: data/heldout-*" in card

    import datasets

    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert set(ds) == {"train", "heldout"} and ds["heldout"]["chapter"] == [10]
    assert ds["heldout"]["novel"] == ["Emma"] and set(ds["train"].column_names) == {"novel", "chapter", "heading", "text"}
    assert austen.austen_text("heldout") == "Para one of EMMA ch 10, second line.\n\nPara two, £10."

    (out / "source.json").unlink()  # a half-finished fetch never looks finished
    with pytest.raises(TraitbenchError, match="traitbench corpus fetch"):
        austen.austen_text("train")
    assert austen.fetch_austen() == out and len(calls) == 2 and austen.is_complete(out)


def test_cli_without_apt_get_is_one_line(tmp_path, monkeypatch, capsys):
    from traitbench.cli import main

    monkeypatch.setenv("TRAITBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(austen.shutil, "which", lambda name: None)
    assert main(["corpus", "fetch"]) == 2
    err = capsys.readouterr().err
    assert "apt-get download r-cran-janeaustenr" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("mangle,needle", [
    (lambda d: d[:-10], "truncated"),
    (lambda d: d[:4] + b"\x78\x9c garbage" + d[14:], "does not decompress"),
    (lambda d: struct.pack(">I", 7) + d[4:], "header says 7"),
    (lambda d: blob(b"not R data at all"), "not an XDR"),
    (lambda d: blob(xdr_strings(["ok"])[:-1]), "truncated"),
    (lambda d: b"", "empty file"),
])
def test_malformed_rdb(tmp_path, mangle, needle):
    path = tmp_path / "bad.rdb"
    path.write_bytes(mangle(blob(xdr_strings(["EMMA", "CHAPTER I", "text"]))))
    with pytest.raises(TraitbenchError, match=needle) as e:
        austen.extract_rdb(path)
    assert "\n" not in str(e.value)
