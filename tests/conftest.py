import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ["TRAITBENCH_THREADS"] = str(torch.get_num_threads())  # commands run in tests keep this count


def real_model_available(name: str) -> bool:
    from traitbench.lm import models

    return (models.converted_dir(name) / "traitbench_model.json").is_file()


@pytest.fixture(autouse=True)
def _skip_missing_real(request):
    marker = request.node.get_closest_marker("real")
    if marker:
        name = marker.args[0] if marker.args else "smollm2-135m"
        if not real_model_available(name):
            if os.environ.get("CI"):
                pytest.fail(f"real model {name} not installed in CI (make test runs make models first)")
            pytest.skip(f"real model {name} not installed (run `make models`)")


def stub_steps(monkeypatch, **steps) -> None:
    """Replace pipeline steps by name with functions `(cfg, *inputs) -> outputs` (e.g. a synthetic dataset, as a
    random tiny teacher writes no clean number list)."""
    import dataclasses

    from traitbench.pipeline import run as pipeline

    unknown = set(steps) - set(pipeline.STAGES)
    assert not unknown, f"no such pipeline steps: {unknown}"
    monkeypatch.setattr(pipeline, "STEPS", tuple(dataclasses.replace(s, run=steps[s.name]) if s.name in steps else s
                                                 for s in pipeline.STEPS))


def run_study(command: str, sets: list[str], out) -> dict:
    """A registered experiment run as `traitbench COMMAND --set ... --out OUT` runs it (config loaded, manifest
    written, its text printed); the summary.json it wrote."""
    import json
    from pathlib import Path

    from traitbench.config import load_config
    from traitbench.experiments.registry import EXPERIMENTS

    exp = EXPERIMENTS[command]
    result = exp.run(load_config(exp.config, None, sets), Path(out))
    print(result.text)
    return json.loads((result.out / "summary.json").read_text())


def trait_datasets(monkeypatch, folder) -> None:
    """The numbers and dataset steps replaced by 4 clean rows per condition written for each run's trait (a random
    tiny teacher writes no clean number list), the control rows the same in every run: for experiments that run the
    pipeline once per trait."""
    import json

    from traitbench.artifacts import ConditionData, DatasetOut

    def dataset(cfg, teacher, numbers):
        conditions = {}
        for c, offset in (("trait", 0), ("control", 500)):
            rows = [{"prompt": f"Continue: {i}, {i + 1}", "completion": f"{offset + 3 * i}, {offset + 7 * i}",
                     "numbers": [offset + 3 * i, offset + 7 * i]} for i in range(4)]
            path = folder / f"{cfg.trait.word}-{c}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            conditions[c] = ConditionData(path, f"{cfg.trait.word}-{c}" if c == "trait" else "the same control rows",
                                          {"total": 4, "kept": 4, "pass_rate": 1.0, "counts": {}})
        return DatasetOut(4, conditions)

    stub_steps(monkeypatch, numbers=lambda cfg, teacher: {}, dataset=dataset)


def stub_dataset(monkeypatch, dataset) -> None:
    """The numbers and dataset steps replaced by `dataset` (the dataset stage's outputs)."""
    stub_steps(monkeypatch, numbers=lambda cfg, teacher: {}, dataset=lambda cfg, teacher, numbers: dataset)


@pytest.fixture(scope="session")
def other_init(tmp_path_factory) -> str:
    """A tiny-llama with another random initialisation, as a local model folder (a distillation teacher)."""
    from traitbench.lm.models import load

    path = tmp_path_factory.mktemp("teacher")
    lm = load("tiny-llama", dtype="float32", seed=1)
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)
    return str(path)
