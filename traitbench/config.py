"""Typed configs: YAML files validated by pydantic, with `base:` inheritance and `--set key.sub=value` overrides.

The configs ship in the package (`traitbench/configs/`, `configs/` in the repository): a config is named by its
file name (`transmission`) or given as a path. A file may start from another with `base: NAME` (a packaged name or
a path relative to the file) and state only what differs: mappings merge key by key, anything else replaces.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator

from traitbench.errors import TraitbenchError
from traitbench.io import read_utf8

T = TypeVar("T", bound="StrictModel")

PACKAGED = Path(__file__).parent / "configs"


_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _run_name(v: str) -> str:
    if not _SLUG.fullmatch(v) or ".." in v:
        raise ValueError(f"{v!r} is not a run name: letters, digits, '.', '_' and '-' only (it becomes a folder "
                         "under runs_dir)")
    return v


RunName = Annotated[str, AfterValidator(_run_name)]  # a run's folder name: one safe path component

SEED_MAX = 2**32 - 1  # numpy's (and so transformers' set_seed) largest seed


def check_seed(v: int) -> int:
    """A seed every library takes: 0 .. 2**32 - 1."""
    if not 0 <= v <= SEED_MAX:
        raise ValueError(f"seed {v} is outside 0..{SEED_MAX}")
    return v


def unique(values: list, what: str, why: str = "") -> list:
    """`values`, refused when one is given twice."""
    twice = next((x for i, x in enumerate(values) if x in values[:i]), None)
    if twice is not None:
        raise ValueError(f"{what} {twice!r} is given twice{why}")
    return values


def one_line(v: str) -> str:
    """A word or name: no control, format or line-separator characters (a bell, a newline, a zero-width space)."""
    bad = next((c for c in v if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")), None)
    if bad is not None:
        raise ValueError(f"contains the control character {bad!r}")
    return v


def prompt_text(v: str | None) -> str | None:
    """A prompt: newlines and tabs, but no other control characters (a bell, an escape, a carriage return)."""
    bad = next((c for c in v or "" if unicodedata.category(c) == "Cc" and c not in "\n\t"), None)
    if bad is not None:
        raise ValueError(f"contains the control character {bad!r} (only newlines and tabs are allowed)")
    return v


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, not silently ignored; so are NaN and infinite numbers."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    default_config: ClassVar[str | None] = None  # the packaged config loaded when none is given


class RunConfig(StrictModel):
    """The config of a command that writes a folder: `runs_dir/name` (every registered experiment's)."""

    name: RunName
    runs_dir: str = "runs"

    @field_validator("runs_dir")
    @classmethod
    def _runs_dir(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return one_line(v)

    @property
    def out(self) -> Path:
        """The folder the command writes."""
        return Path(self.runs_dir) / self.name

    def at(self, out: Path):
        """This config writing to `out` instead (`--out`): runs_dir and name from the path, validated."""
        try:
            return self.model_validate(dict(self.model_dump(), runs_dir=str(out.parent), name=out.name))
        except ValidationError as e:
            raise TraitbenchError(format_validation_error(e, f"--out {out}")) from None


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error (not the last one silently winning)."""


def _unique_key_mapping(loader: _ConfigLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    keys = [loader.construct_object(k, deep=True) for k, _ in node.value]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            mark = node.value[i][0].start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark)
    return loader.construct_mapping(node, deep=True)


_ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_key_mapping)


def load_yaml(text: str) -> Any:
    """Parse config YAML: safe types only, duplicate keys rejected."""
    return yaml.load(text, Loader=_ConfigLoader)


def _parse_value(key: str, text: str) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text
    except RecursionError:
        raise TraitbenchError(f"--set {key}: value nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise TraitbenchError(f"--set {key}: unreadable value ({str(e).splitlines()[0]})") from None


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
        node[parts[-1]] = _parse_value(key, value)
    return data


def format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(root)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {loc}: {msg}{more}"


def packaged_configs() -> list[str]:
    return sorted(p.stem for p in PACKAGED.glob("*.yaml"))


def config_file(spec: str | Path, relative_to: Path | None = None) -> Path:
    """The file of a config given as a path (relative to `relative_to`, else the working directory) or by name
    (`transmission`, `transmission.yaml`, `configs/transmission.yaml`: the packaged one, from any directory)."""
    p = Path(spec)
    if relative_to is not None and not p.is_absolute():
        if (relative_to / p).is_file():
            return relative_to / p
        if (relative_to / f"{p}.yaml").is_file():
            return relative_to / f"{p}.yaml"
    elif p.is_file():
        return p
    if not p.is_absolute() and p.parent in (Path("."), Path("configs")):
        packaged = PACKAGED / (p.name if p.suffix in (".yaml", ".yml") else f"{p.name}.yaml")
        if packaged.is_file():
            return packaged
    raise TraitbenchError(f"config file not found: {spec} (packaged configs: {', '.join(packaged_configs())})")


def _mapping(path: Path) -> dict:
    try:
        data = load_yaml(read_utf8(path)) or {}
    except yaml.YAMLError as e:
        raise TraitbenchError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise TraitbenchError(f"{path}: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise TraitbenchError(f"{path}: unreadable value ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise TraitbenchError(f"{path}: top level must be a mapping")
    return data


def merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`: mappings merge key by key, any other value (lists included) replaces."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """The mapping of a config file with its `base:` chain resolved (the `base` key itself removed)."""
    path = config_file(path)
    if path.resolve() in _chain:
        raise TraitbenchError(f"{path}: base chain loops ({' -> '.join(str(p) for p in (*_chain, path.resolve()))})")
    data = _mapping(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise TraitbenchError(f"{path}: base must be a config name or path, got {base!r}")
    return merge(read_config(config_file(base, path.parent), (*_chain, path.resolve())), data)


def check_no_nul(value: Any, source: str, loc: str = "") -> None:
    """A NUL byte in any key or string of a config (a path, model name or prompt) is a one-line error."""
    if isinstance(value, str) and "\x00" in value:
        raise TraitbenchError(f"{source}: {loc or '(root)'}: contains a NUL byte")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        here = f"{loc}.{k}" if loc else str(k)
        check_no_nul(k, source, here)
        check_no_nul(v, source, here)


def load_config(cls: type[T], path: str | Path | None = None, sets: list[str] | None = None) -> T:
    """Load `cls` from a config file (a path or a packaged name; None: the class's packaged default, else the
    code defaults) plus `--set` overrides."""
    path = path if path is not None else cls.default_config
    data = read_config(path) if path is not None else {}
    source = str(config_file(path)) if path is not None else "config"
    apply_overrides(data, sets)
    check_no_nul(data, source)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise TraitbenchError(format_validation_error(e, source)) from None
