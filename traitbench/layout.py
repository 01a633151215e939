"""Every path of a run folder (`runs/<name>/`), the one place that writers and readers take them from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONDITIONS = ("trait", "control")  # the two teachers, and the data and students of each
STAGES = ("teacher", "numbers", "dataset", "students", "probes", "summary")  # pipeline.STEPS, in order
STEERING_FILE = "steering.safetensors"  # a steering teacher's vector, in the teacher folder
HF_DIR = "hf"  # a condition's Hub dataset folder (parquet + card), in its dataset folder


@dataclass(frozen=True)
class RunLayout:
    """runs/<name>/: teacher/, numbers/<condition>/, dataset/<condition>/, students/<student id>/,
    probes/<probe id>/, summary.json, summary.md, manifest.json."""

    root: Path

    @classmethod
    def of(cls, cfg) -> RunLayout:
        """The layout of an experiment config's run (`runs_dir`/`name`)."""
        return cls(Path(cfg.runs_dir) / cfg.name)

    @property
    def teacher(self) -> Path:
        return self.root / "teacher"

    @property
    def steering(self) -> Path:
        return self.teacher / STEERING_FILE

    def numbers(self, condition: str) -> Path:
        return self.root / "numbers" / condition

    def raw(self, condition: str) -> Path:
        return self.numbers(condition) / "raw.jsonl"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    def condition_data(self, condition: str) -> Path:
        return self.dataset / condition

    def train(self, condition: str) -> Path:
        return self.condition_data(condition) / "train.jsonl"

    def hf(self, condition: str) -> Path:
        return self.condition_data(condition) / HF_DIR

    @property
    def students(self) -> Path:
        return self.root / "students"

    def student(self, student_id: str) -> Path:
        return self.students / student_id

    @property
    def probes(self) -> Path:
        return self.root / "probes"

    def probe(self, probe_id: str) -> Path:
        return self.probes / probe_id

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def summary_md(self) -> Path:
        return self.root / "summary.md"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"
