"""What each stage hands the next: small typed records of its files and hashes.

A stage stores its record as JSON in its `stage.json` (`to_dict`) and reads it back from there when it is cached
(`from_dict`), so a rerun gets the same record as the run that did the work. The probes stage's results are
the probes' own JSON (`probes/registry.py`); the summary stage returns the path of `summary.json`. A command
(`traitbench.experiments.registry`) hands back a `Result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TeacherSetup:
    """Which weights and which context a teacher condition samples with."""

    model: str
    adapter_dir: str | None
    system: str | None
    steering: str | None = None  # a saved steering vector (`teacher.steering`) hooked into the model

    @property
    def trait_path(self) -> str | None:
        """Where the trait's weights are (adapter folder or steering file): what `load_trait_model` takes."""
        return self.adapter_dir or self.steering

    def to_dict(self) -> dict:
        d = {"model": self.model, "adapter_dir": self.adapter_dir, "system": self.system}
        return d if self.steering is None else dict(d, steering=self.steering)

    @classmethod
    def from_dict(cls, d: dict) -> TeacherSetup:
        return cls(d["model"], d["adapter_dir"], d["system"], d.get("steering"))


@dataclass(frozen=True)
class TeacherOut:
    """The teacher stage: each condition's setup, and what the trait injection made or checked (by injection
    name: a trained LoRA adapter, a steering vector, a given adapter's hash)."""

    conditions: dict[str, TeacherSetup]
    made: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"conditions": {c: s.to_dict() for c, s in self.conditions.items()}, **self.made,
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> TeacherOut:
        made = {k: v for k, v in d.items() if k not in ("conditions", "seconds")}
        return cls({c: TeacherSetup.from_dict(s) for c, s in d["conditions"].items()}, made, d.get("seconds", 0.0))


@dataclass(frozen=True)
class NumbersOut:
    """The numbers stage, per condition: the raw completions file and its hash."""

    raw: Path
    rows: int
    raw_sha256: str
    throughput: dict
    dtype: str

    def to_dict(self) -> dict:
        return {"raw": str(self.raw), "rows": self.rows, "raw_sha256": self.raw_sha256,
                "throughput": self.throughput, "dtype": self.dtype}

    @classmethod
    def from_dict(cls, d: dict) -> NumbersOut:
        return cls(Path(d["raw"]), d["rows"], d["raw_sha256"], d["throughput"], d["dtype"])


@dataclass(frozen=True)
class ConditionData:
    """One condition's training data: the JSONL the students read, the Hub folder, its content hash and the
    filter's counts."""

    train: Path
    content_hash: str
    stats: dict
    hf: Path | None = None

    def to_dict(self) -> dict:
        d = {"train": str(self.train), "hf": str(self.hf) if self.hf else None, "content_hash": self.content_hash,
             "stats": self.stats}
        return d if self.hf else {k: v for k, v in d.items() if k != "hf"}

    @classmethod
    def from_dict(cls, d: dict) -> ConditionData:
        return cls(Path(d["train"]), d["content_hash"], d["stats"], Path(d["hf"]) if d.get("hf") else None)


@dataclass(frozen=True)
class DatasetOut:
    """The dataset stage: the same number of rows for every condition."""

    n_rows: int
    conditions: dict[str, ConditionData]

    def to_dict(self) -> dict:
        return {"n_rows": self.n_rows, "conditions": {c: v.to_dict() for c, v in self.conditions.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> DatasetOut:
        return cls(d["n_rows"], {c: ConditionData.from_dict(v) for c, v in d["conditions"].items()})


@dataclass(frozen=True)
class StudentOut:
    """One trained student: its folder (adapter/ or model/, model card, metrics) and how it relates to the
    teacher."""

    dir: Path
    metrics: dict
    family: str
    relation: str

    def to_dict(self) -> dict:
        return {"dir": str(self.dir), "metrics": self.metrics, "family": self.family, "relation": self.relation}

    @classmethod
    def from_dict(cls, d: dict) -> StudentOut:
        return cls(Path(d["dir"]), d["metrics"], d["family"], d["relation"])


@dataclass
class Result:
    """What a run hands back: the folder it wrote, the text the command prints, its main files, its exit status,
    and what the manifest records of it beside the time taken."""

    out: Path
    text: str
    files: list[Path] = field(default_factory=list)
    status: int = 0
    manifest: dict = field(default_factory=dict)
