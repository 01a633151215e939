"""Load tuned models: a `train_student` output folder or a bare PEFT adapter folder on its base model, one at a
time (`load_student`) or many adapters of one base in a row (`StudentLoader`); a teacher with its trait weights
(`load_trait_model`: an adapter or a steering vector)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from traitbench.errors import TraitbenchError
from traitbench.layout import STEERING_FILE
from traitbench.lm import models
from traitbench.lm.models import LoadedModel, default_device, get_spec, load, resolve_dtype
from traitbench.lm.config import ALL_LINEAR
from traitbench.lm.steering import Steering


def load_student(model: str, student_dir: str | Path, dtype: str = "auto", device: str | None = None) -> LoadedModel:
    """A trained student: the base with its adapter merged (in fp32, then cast), or the full model folder.

    `student_dir` is a `train_student` output folder or a bare adapter folder. Spec and tokenizer are the base's.
    """
    from peft import PeftModel  # heavy (PEFT, seconds): only for an adapter student

    path = Path(student_dir)
    adapter = next((p for p in (path / "adapter", path) if (p / "adapter_config.json").is_file()), None)
    if adapter is not None:
        base = load(model, dtype="float32", device=device)
        merged = PeftModel.from_pretrained(base.model, adapter).merge_and_unload()
        # cast the weights only: `Module.to(dtype)` would also cast the fp32 RoPE frequency buffers that
        # from_pretrained keeps in fp32 (bf16 positions are imprecise, and 25x slower on CPU for gemma)
        for p in merged.parameters():
            p.data = p.data.to(resolve_dtype(dtype))
        return LoadedModel(base.spec, merged.eval(), base.tokenizer, base.path)
    if (path / "model" / "config.json").is_file():
        full = load(str(path / "model"), dtype=dtype, device=device or default_device())
        return LoadedModel(get_spec(model), full.model, full.tokenizer, full.path)
    raise TraitbenchError(f"{path} holds no student (neither adapter/ nor model/)")


class StudentLoader:
    """LoRA students of one base model loaded one after another, fast (for probing many students and
    checkpoints): the base is loaded once, as `load_student` does (fp32, then its weights cast), and each
    adapter is merged into a copy of the fp32 weights it targets, then cast: the same weights as
    `load_student`, without reading and converting the base every time. The model returned is reused: the
    next call overwrites the previous student. Other adapters and full fine-tunes go through `load_student`."""

    def __init__(self, dtype: str = "auto", device: str | None = None):
        self.dtype, self.device = dtype, device
        self.name: str | None = None
        self.lm: LoadedModel | None = None
        self.fp32: dict[str, torch.Tensor] = {}  # the base's weights of every adapter-targetable linear layer
        self.merged: set[str] = set()

    def __call__(self, model: str, student_dir: str | Path) -> LoadedModel:
        path = Path(student_dir)
        adapter = next((p for p in (path / "adapter", path) if (p / "adapter_config.json").is_file()), None)
        cfg = json.loads((adapter / "adapter_config.json").read_text()) if adapter else {}
        weights = adapter / "adapter_model.safetensors" if adapter else None
        if not adapter or not weights.is_file() or any(cfg.get(k) for k in (
                "use_rslora", "use_dora", "fan_in_fan_out", "rank_pattern", "alpha_pattern", "modules_to_save")):
            return load_student(model, student_dir, self.dtype, self.device)
        if self.name != model:
            self._load_base(model)
        state = load_file(weights)
        pairs = {key.removeprefix("base_model.model.").split(".lora_A.")[0]: (a, state[key.replace(".lora_A.", ".lora_B.")])
                 for key, a in state.items() if ".lora_A." in key}
        if not set(pairs) <= set(self.fp32):  # a layer no cached base weight covers
            return load_student(model, student_dir, self.dtype, self.device)
        modules = dict(self.lm.model.named_modules())
        scaling = cfg["lora_alpha"] / cfg["r"]
        for name, (a, b) in pairs.items():
            merged = self.fp32[name] + (b.float() @ a.float()) * scaling
            modules[name].weight.data = merged.to(modules[name].weight.dtype)
        touched = set(pairs)
        for name in self.merged - touched:  # layers the previous adapter changed and this one does not
            modules[name].weight.data = self.fp32[name].to(modules[name].weight.dtype)
        self.merged = touched
        return self.lm

    def _load_base(self, model: str) -> None:
        self.lm = None
        base = load(model, dtype="float32", device=self.device)
        self.fp32 = {name: m.weight.detach().clone() for name, m in base.model.named_modules()
                     if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in ALL_LINEAR}
        for p in base.model.parameters():  # as load_student: weights only (fp32 RoPE buffers stay)
            p.data = p.data.to(resolve_dtype(self.dtype))
        self.name, self.lm, self.merged = model, LoadedModel(base.spec, base.model.eval(), base.tokenizer, base.path), set()


def is_steering(trait_path: str | Path | None) -> bool:
    return trait_path is not None and Path(trait_path).name == STEERING_FILE


def load_trait_model(model: str, trait_path: str | Path | None, dtype: str = "auto", seed: int = 0
                     ) -> models.LoadedModel:
    """`model` with the trait at `trait_path`: a saved steering vector (hooked in for the model's lifetime),
    a PEFT adapter folder (merged), or nothing (None)."""
    if trait_path is None or is_steering(trait_path):
        lm = models.load(model, dtype=dtype, seed=seed)
        if trait_path is not None:
            Steering.load(trait_path).attach(lm.model)
        return lm
    try:
        return load_student(model, trait_path, dtype=dtype)
    except (RuntimeError, ValueError, KeyError) as e:  # e.g. the adapter's shapes do not fit the model
        raise TraitbenchError(f"cannot apply the adapter {trait_path} to {model}: {str(e).strip().splitlines()[0]}"
                              ) from None
