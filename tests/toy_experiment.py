"""A toy experiment (registered in a test by tests/test_experiment_registry.py): a config and a run function."""

from pathlib import Path

from pydantic import Field

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName
from traitbench.io import atomic_write_json


class ToyConfig(RunConfig):
    name: RunName = "toy"
    n: int = Field(3, ge=1)


def run(cfg: ToyConfig, out: Path, shout: bool = False) -> Result:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "toy.json", {"squares": [i * i for i in range(cfg.n)]})
    return Result(out, "TOY" if shout else "toy", [out / "toy.json"], manifest={"n": cfg.n})
