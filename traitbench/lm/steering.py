"""A steering vector in a model: `scale` × a direction added to one decoder layer's output (the hook; how a
trait's vector is computed is `traitbench.teacher.steering`)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from traitbench.errors import TraitbenchError
from traitbench.layout import STEERING_FILE


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder layers of a causal LM (PEFT-wrapped or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(getattr(base, "model", None), "layers", None)
    if layers is None:
        raise TraitbenchError(f"steering: cannot find the decoder layers of {type(base).__name__}")
    return layers


def resolve_layer(model: torch.nn.Module, layer: int | None) -> int:
    """`layer` checked against the model's depth; None means the middle layer."""
    n = len(decoder_layers(model))
    layer = n // 2 if layer is None else layer
    if not 0 <= layer < n:
        raise TraitbenchError(f"steering layer {layer} is outside the model's {n} layers (0..{n - 1})")
    return layer


def _add(output, delta: torch.Tensor):
    if isinstance(output, tuple):
        return (output[0] + delta.to(output[0].dtype),) + output[1:]
    return output + delta.to(output.dtype)


@dataclass
class Steering:
    """`scale` × `vector` added to the output of decoder layer `layer`."""

    layer: int
    vector: torch.Tensor  # [hidden], float32
    scale: float = 1.0

    @property
    def delta(self) -> torch.Tensor:
        return self.vector * self.scale

    def attach(self, model: torch.nn.Module) -> torch.utils.hooks.RemovableHandle:
        """Hook the layer for good (until the handle is removed); returns the handle."""
        delta = self.delta.to(next(model.parameters()).device)
        return decoder_layers(model)[self.layer].register_forward_hook(lambda _m, _i, out: _add(out, delta))

    @contextmanager
    def applied(self, model: torch.nn.Module):
        handle = self.attach(model)
        try:
            yield model
        finally:
            handle.remove()

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / STEERING_FILE
        tmp = path.with_name("." + STEERING_FILE + ".tmp")
        save_file({"vector": self.vector.float().contiguous()}, str(tmp),
                  metadata={"layer": str(self.layer), "scale": repr(float(self.scale))})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Steering:
        path = Path(path)
        if path.is_dir():
            path = path / STEERING_FILE
        if not path.is_file():
            raise TraitbenchError(f"no steering vector at {path}")
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            return cls(int(meta["layer"]), f.get_tensor("vector"), float(meta["scale"]))
