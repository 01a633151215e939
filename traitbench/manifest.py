"""Run manifests: resolved config, seeds, model and dataset hashes, library versions, git sha, hardware."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from traitbench.io import atomic_write_json
from traitbench.layout import RunLayout

LIBRARIES = ["traitbench", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "evaluate",
             "gguf", "numpy", "scipy", "scikit-learn", "pydantic"]


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def git_info() -> dict:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    sha = git("rev-parse", "HEAD")
    return {"sha": sha or "unknown", "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (`cpuinfo`'s "model name", e.g. "AMD EPYC"); else what `platform` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    import torch  # heavy: the torch-free controls (gmm_collapse) write manifests too

    info = {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(), "cpu": cpu_model()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def array_sha256(*arrays) -> str:
    """sha256 over the dtypes, shapes and bytes of numpy arrays (in-memory datasets, e.g. scikit-learn's)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def update_manifest(run_dir: str | Path, config: dict, stage: str | None = None, stage_info: dict | None = None) -> dict:
    """Create or update `run_dir/manifest.json`; each stage adds its own record (hashes, seeds, timings)."""
    path = RunLayout(Path(run_dir)).manifest
    manifest = json.loads(path.read_text()) if path.is_file() else {"created": _now(), "stages": {}}
    manifest.update(config=config, updated=_now(), libraries=library_versions(), git=git_info(),
                    hardware=hardware())
    if stage is not None:
        manifest["stages"][stage] = dict(stage_info or {}, finished=_now())
    atomic_write_json(path, manifest)
    return manifest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
