"""Stage caching by key: a stage is skipped when its recorded key (config slice + input hashes) matches.

`cached` is the one way a stage runs: it reads a finished stage back, or does the work, times it, records it in
the run's manifest and finishes the stage; a stage supplies only its key and its work.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from traitbench.io import atomic_write_json, sha256_json
from traitbench.manifest import update_manifest

A = TypeVar("A")


@dataclass
class Stage:
    """A stage folder with a `stage.json` that records the key it was completed under."""

    dir: Path
    key: dict

    @property
    def key_hash(self) -> str:
        return sha256_json(self.key)

    @property
    def record_path(self) -> Path:
        return self.dir / "stage.json"

    def is_done(self) -> bool:
        if not self.record_path.is_file():
            return False
        try:
            return json.loads(self.record_path.read_text()).get("key_hash") == self.key_hash
        except json.JSONDecodeError:
            return False

    def outputs(self) -> dict:
        return json.loads(self.record_path.read_text())["outputs"]

    def started_under_same_key(self) -> bool:
        """True when partial work in the folder was started under this key (safe to resume)."""
        p = self.dir / "stage.key.json"
        return p.is_file() and json.loads(p.read_text()).get("key_hash") == self.key_hash

    def begin(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.record_path.unlink(missing_ok=True)
        atomic_write_json(self.dir / "stage.key.json", {"key_hash": self.key_hash, "key": self.key})

    def finish(self, outputs: dict) -> dict:
        atomic_write_json(self.record_path, {"key_hash": self.key_hash, "key": self.key, "outputs": outputs})
        return outputs


def cached(stage: Stage, work: Callable[[Stage], A], artifact: Any = None, *, label: str | None = None,
           manifest: tuple[Path, dict] | None = None, record: Callable[[A], dict] | None = None,
           partial: Path | None = None) -> A:
    """`stage`'s artifact: read back when the stage is done under its key, else made by `work(stage)`.

    `artifact`: the typed record (`to_dict` / `from_dict`; None: a plain dict); `label`: printed when cached and
    the stage's name in the manifest; `manifest`: (run folder, resolved config) to record the stage in, with
    `record(artifact)` and its seconds; `partial`: a file of resumable work, kept only when started under this key.
    """
    load = artifact.from_dict if artifact is not None else (lambda d: d)
    if stage.is_done():
        if label:
            print(f"[{label}] cached: {stage.dir}")
        return load(stage.outputs())
    if partial is not None and partial.exists() and not stage.started_under_same_key():
        partial.unlink()  # partial work from another config: start over rather than mix settings
    stage.begin()
    t0 = time.perf_counter()
    out = work(stage)
    if manifest is not None:
        run_dir, config = manifest
        update_manifest(run_dir, config, label, {**(record(out) if record else {}),
                                                 "seconds": round(time.perf_counter() - t0, 1)})
    return load(stage.finish(out.to_dict() if artifact is not None else out))
