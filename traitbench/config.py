"""Typed configs: YAML files validated by pydantic, with `--set key.sub=value` overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from traitbench.errors import TraitbenchError
from traitbench.io import read_utf8

T = TypeVar("T", bound="StrictModel")


_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _run_name(v: str) -> str:
    if not _SLUG.fullmatch(v) or ".." in v:
        raise ValueError(f"{v!r} is not a run name: letters, digits, '.', '_' and '-' only (it becomes a folder "
                         "under runs_dir)")
    return v


RunName = Annotated[str, AfterValidator(_run_name)]  # a run's folder name: one safe path component


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict, sets: list[str] | None) -> dict:
    """Apply `a.b=value` overrides (value parsed as YAML) to a nested dict, in place."""
    for item in sets or []:
        if "=" not in item:
            raise TraitbenchError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            if not isinstance(child, dict):
                raise TraitbenchError(f"--set {key}: {p!r} is not a section")
            node = child
        node[parts[-1]] = _parse_value(value)
    return data


def format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(root)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {loc}: {msg}{more}"


def load_config(cls: type[T], path: str | Path | None = None, sets: list[str] | None = None) -> T:
    """Load `cls` from a YAML file (or defaults when `path` is None) plus overrides."""
    data: dict = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise TraitbenchError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(read_utf8(path)) or {}
        except yaml.YAMLError as e:
            raise TraitbenchError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
        except RecursionError:
            raise TraitbenchError(f"{path}: nested too deeply") from None
        if not isinstance(data, dict):
            raise TraitbenchError(f"{path}: top level must be a mapping")
    apply_overrides(data, sets)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise TraitbenchError(format_validation_error(e, source)) from None
