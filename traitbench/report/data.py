"""Read whatever a run folder holds (summary, manifest, filter stats, number lists, per-sample logs).

Every piece is optional: a run stopped before its students exists on disk as a manifest and a dataset,
and the report shows the rest as "not run" instead of failing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from traitbench.errors import TraitbenchError
from traitbench.io import read_json, read_utf8
from traitbench.layout import CONDITIONS, STAGES, RunLayout

__all__ = ["CONDITIONS", "NOT_RUN", "STAGES", "RunData", "load_run"]
NOT_RUN = "not run"  # how the report shows a value, panel or stage that a run does not have
_JSON_NAMES = {dict: "object", list: "array", str: "string"}
SUMMARY_SHAPE = {"name": str, "trait": dict, "teacher": dict, "models": dict, "verdicts": list,
                 "dose_response": list, "student_effects": list, "dataset": dict, "probe_context": str}
MANIFEST_SHAPE = {"config": dict, "stages": dict}
STATS_SHAPE = {"counts": dict, "settings": dict}


def _json(path: Path, shape: dict[str, type] | None = None) -> dict | None:
    """A run's JSON object file, None when absent; `shape`: the type each top-level key must have when present."""
    if not path.is_file():
        return None
    data = read_json(path)
    for key, kind in (shape or {}).items():
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise TraitbenchError(f"{path}: {key!r} should be a JSON {_JSON_NAMES[kind]}, got "
                                  f"{type(data[key]).__name__} (a damaged or foreign file; rerun its stage)")
    return data


def _numbers(path: Path) -> list[list[int]]:
    """The parsed number lists of a dataset file (rows without a `numbers` list are skipped)."""
    out = []
    for line in read_utf8(path).splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        nums = row.get("numbers") if isinstance(row, dict) else None
        if isinstance(nums, list):
            out.append([int(n) for n in nums if isinstance(n, (int, float)) and math.isfinite(n)])
    return out


@dataclass
class RunData:
    """One run folder: parsed JSON files and the paths of its logs; None where a piece is missing."""

    path: Path
    summary: dict | None = None
    manifest: dict | None = None
    filter_stats: dict[str, dict] = field(default_factory=dict)  # condition -> stats.json
    number_lists: dict[str, list[list[int]]] = field(default_factory=dict)  # condition -> lists
    number_source: dict[str, str] = field(default_factory=dict)  # condition -> file the lists came from
    sample_logs: dict[str, Path] = field(default_factory=dict)  # probe id -> samples.jsonl
    other_logs: dict[str, Path] = field(default_factory=dict)  # label -> file
    stages: dict[str, bool] = field(default_factory=dict)

    @property
    def name(self) -> str:
        for src in (self.summary, (self.manifest or {}).get("config")):
            if src and src.get("name"):
                return str(src["name"])
        return self.path.name

    @property
    def config(self) -> dict:
        return (self.manifest or {}).get("config") or {}

    @property
    def trait(self) -> dict:
        return (self.summary or {}).get("trait") or self.config.get("trait") or {}

    @property
    def teacher(self) -> dict:
        return (self.summary or {}).get("teacher") or self.config.get("teacher") or {}

    @property
    def models(self) -> dict:
        return (self.summary or {}).get("models") or {}


def load_run(path: str | Path) -> RunData:
    """Load a run folder; an existing folder with none of the expected files is an error."""
    path = Path(path)
    if not path.is_dir():
        raise TraitbenchError(f"run folder not found: {path}")
    lay = RunLayout(path)
    run = RunData(path=path, summary=_json(lay.summary_json, SUMMARY_SHAPE), manifest=_json(lay.manifest, MANIFEST_SHAPE))
    for c in CONDITIONS:
        d = lay.condition_data(c)
        stats = _json(d / "stats.json", STATS_SHAPE)
        if stats:
            run.filter_stats[c] = stats
        for name in ("train.jsonl", "kept.jsonl"):
            if (d / name).is_file():
                run.number_lists[c], run.number_source[c] = _numbers(d / name), str(d / name)
                break
        for name in ("train.jsonl", "kept.jsonl", "rejected.jsonl"):
            if (d / name).is_file():
                run.other_logs[f"dataset/{c}/{name}"] = d / name
        raw = lay.raw(c)
        if raw.is_file():
            run.other_logs[f"numbers/{c}/raw.jsonl"] = raw
    for f in sorted(lay.probes.glob("**/samples.jsonl")):
        run.sample_logs[str(f.parent.relative_to(lay.probes))] = f
    done = set((run.manifest or {}).get("stages", {}))
    run.stages = {
        "teacher": "teacher" in done or (lay.teacher / "stage.json").is_file(),
        "numbers": any(k.startswith("numbers") for k in done) or any(lay.raw(c).is_file() for c in CONDITIONS),
        "dataset": "dataset" in done or bool(run.filter_stats),
        "students": "students" in done or any(lay.students.glob("**/stage.json")),
        "probes": "probes" in done or bool(run.sample_logs),
        "summary": run.summary is not None,
    }
    if run.summary is None and run.manifest is None and not run.filter_stats:
        raise TraitbenchError(f"{path}: no summary.json, manifest.json or dataset/ — not a traitbench run folder")
    return run
