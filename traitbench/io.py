"""Atomic file writes, crash-safe JSONL appends and strict JSONL reads."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from traitbench.errors import TraitbenchError


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` so readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_utf8(path: str | Path) -> str:
    """A user's text file; a binary or otherwise non-UTF-8 one raises a one-line TraitbenchError."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise TraitbenchError(f"{path}: not a UTF-8 text file (byte {e.start})") from None


def read_json(path: str | Path) -> dict:
    """A JSON object file; binary, invalid, too deeply nested or non-object content raises TraitbenchError."""
    try:
        data = json.loads(read_utf8(path))
    except json.JSONDecodeError as e:
        raise TraitbenchError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise TraitbenchError(f"{path}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise TraitbenchError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict]:
    """Read every row; a missing file, a corrupt line or a missing field raises TraitbenchError."""
    path = Path(path)
    if not path.is_file():
        raise TraitbenchError(f"input file not found: {path}")
    required = tuple(required)
    rows = []
    for lineno, line in enumerate(read_utf8(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TraitbenchError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        except RecursionError:
            raise TraitbenchError(f"{path}:{lineno}: JSON nested too deeply") from None
        if not isinstance(row, dict):
            raise TraitbenchError(f"{path}:{lineno}: expected a JSON object per line")
        missing = [k for k in required if k not in row]
        if missing:
            raise TraitbenchError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def read_complete_jsonl(path: str | Path) -> list[dict]:
    """Rows of an append-only log; a torn final line (crash mid-write) is dropped and truncated away."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    rows, good_end, pos = [], 0, 0
    for line in data.splitlines(keepends=True):
        pos += len(line)
        if not line.endswith(b"\n"):
            break
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
        good_end = pos
    if good_end != len(data):
        with path.open("r+b") as f:
            f.truncate(good_end)
    return rows


class JsonlAppender:
    """Append rows durably (flush + fsync per batch) to a log that `read_complete_jsonl` can resume."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")

    def write(self, rows: Iterable[dict]) -> None:
        self._f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_dir(path: str | Path) -> str:
    """Hash of a folder's files (relative names and contents), independent of mtime."""
    h = hashlib.sha256()
    root = Path(path)
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def iter_batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def json_safe(x):
    """`x` with NaN/inf as None and numpy scalars as Python numbers, for JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.generic):
        return json_safe(x.item())
    return x
