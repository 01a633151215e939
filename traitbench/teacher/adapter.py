"""A given trait adapter (`teacher.injection: adapter`): found in its folder and checked against the teacher model."""

from __future__ import annotations

import re
from pathlib import Path

from traitbench.lm import models
from traitbench.errors import TraitbenchError
from traitbench.io import read_json


def adapter_folder(adapter: str | Path) -> Path:
    """The PEFT adapter folder at `adapter` (or its `adapter/` subfolder, as `train_student` writes it)."""
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise TraitbenchError(f"teacher.adapter {path} is not a folder")
    folder = next((p for p in (path / "adapter", path) if (p / "adapter_config.json").is_file()), None)
    if folder is None:
        raise TraitbenchError(f"teacher.adapter {path} is not a PEFT adapter folder (no adapter_config.json)")
    return folder


def check_adapter(adapter: str | Path, model: str) -> Path:
    """The adapter folder of `teacher.adapter`, checked to be a PEFT adapter trained on `model` (where its
    config names a base model); one-line errors."""
    folder = adapter_folder(adapter)
    config = read_json(folder / "adapter_config.json")
    if not isinstance(config.get("peft_type"), str):
        raise TraitbenchError(f"{folder / 'adapter_config.json'}: no peft_type: not a PEFT adapter config")
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise TraitbenchError(f"teacher.adapter {folder} has no adapter_model.safetensors (traitbench loads "
                              "safetensors weights only)")
    models.check_safetensors(weights)
    base = config.get("base_model_name_or_path")
    if base and not _names(str(base)) & _model_names(model):
        raise TraitbenchError(f"teacher.adapter {folder} was trained on {base!r}, not on teacher.model {model!r}: "
                              "set teacher.model to the adapter's base model")
    return folder


def _names(ref: str) -> set[str]:
    """What a model reference is known by, lowercased: itself, its folder's name, and its hub id when it is a
    snapshot folder of the Hugging Face cache (`…/models--org--name/snapshots/<rev>`)."""
    hub = re.search(r"models--([^/]+?)--([^/]+)/snapshots/", ref)
    names = {ref.rstrip("/"), Path(ref).name} | ({f"{hub[1]}/{hub[2]}"} if hub else set())
    return {n.lower() for n in names if n}


def _model_names(model: str) -> set[str]:
    spec = models.get_spec(model)
    refs = [model, spec.name, spec.folder, spec.hub_id or ""]
    if spec.bundled:
        refs.append(str(models.converted_dir(spec.name)))
    return set().union(*(_names(r) for r in refs if r))
