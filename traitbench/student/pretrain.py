"""Starting points away from a model's own weights: continued pretraining on text unrelated to the task.

A student that does not share the teacher's initialisation is, in the paper's theory, out of reach of subliminal
learning. `continued_start` moves a model away from its base by full fine-tuning on plain text (next-token loss,
`steps` optimizer steps on seeded blocks of the corpus) and records how far it went (`relative_distance`) and
that it still works (held-out perplexity). A start is cached by the base's weights, the text's hash, its steps
and every setting, so each (model, steps, corpus, seed) is made once; the missing starts of a model are made in
one pass.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Callable

import torch
from pydantic import Field, field_validator
from tqdm.auto import tqdm

from traitbench.cache import Stage, cached
from traitbench.config import StrictModel, check_seed
from traitbench.io import sha256_json
from traitbench.lm import models
from traitbench.lm.logprob import perplexity


class PretrainConfig(StrictModel):
    """Continued pretraining of a start: full fine-tune, AdamW, constant learning rate after a linear warm-up."""

    lr: float = Field(5e-5, gt=0)
    warmup_steps: int = Field(10, ge=0)
    batch_size: int = Field(8, ge=1)
    block_tokens: int = Field(128, ge=8)  # tokens per training row, cut from the corpus
    seed: int = 0
    heldout_tokens: int = Field(4096, ge=16)  # of the held-out text, for the start's perplexity

    _seed = field_validator("seed")(check_seed)


def relative_distance(moved: torch.nn.Module, base: torch.nn.Module) -> float:
    """‖θ − θ₀‖ / ‖θ₀‖ over every parameter (tied weights counted once): how far `moved` is from `base`."""
    num = den = 0.0
    base_params = dict(base.named_parameters())
    for name, p in moved.named_parameters():
        b = base_params[name].detach().double()
        num += float((p.detach().double() - b).pow(2).sum())
        den += float(b.pow(2).sum())
    return math.sqrt(num / den)


def text_blocks(lm: models.LoadedModel, text: str, block_tokens: int) -> torch.Tensor:
    """The text's tokens as [n, block_tokens] rows (the tail that fills no block is left out)."""
    ids = lm.tokenizer(text, add_special_tokens=False).input_ids
    n = len(ids) // block_tokens
    return torch.tensor(ids[: n * block_tokens]).view(n, block_tokens)


def _train(lm: models.LoadedModel, blocks: torch.Tensor, cfg: PretrainConfig, steps: int,
           after: Callable[[int, float], None]) -> None:
    """`steps` AdamW steps of next-token loss on batches of `blocks` in a seeded order; `after(step, loss)` after
    each (a pass to K steps is the pass to any K' > K stopped at K: the order and learning rates do not depend on it)."""
    torch.manual_seed(cfg.seed)
    order: list[int] = []
    rng = random.Random(cfg.seed)
    model = lm.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    for step in tqdm(range(1, steps + 1), desc="continued pretraining", unit="step"):
        while len(order) < cfg.batch_size:
            epoch = list(range(len(blocks)))
            rng.shuffle(epoch)
            order += epoch
        batch, order = blocks[order[: cfg.batch_size]].to(model.device), order[cfg.batch_size:]
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, step / max(1, cfg.warmup_steps))
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        after(step, float(loss.detach()))
    model.eval()


def start_key(model: str, text_sha256: str, cfg: PretrainConfig, steps: int) -> dict:
    return {"model": model, "model_hashes": models.file_hashes(model), "text_sha256": text_sha256,
            "pretrain": cfg.model_dump(), "steps": steps}


def continued_starts(model: str, train_text: str, heldout_text: str, text_sha256: str, cfg: PretrainConfig,
                     steps: list[int], root: Path) -> list[dict]:
    """`model` after each of `steps` optimizer steps of continued pretraining on `train_text`, each start saved
    (safetensors and tokenizer) under `root/<model>-k<K>-s<seed>-<key hash>/model/` and cached there. The missing
    starts are made in one pass up to the largest of them. Per start: {"model": the folder to train students from
    (the base's own name at 0 steps), "steps", "distance", "heldout_perplexity", "final_loss", "seconds" (of the
    pass up to it)}."""
    keys = {k: start_key(model, text_sha256, cfg, k) for k in steps}
    stages = {k: Stage(Path(root) / f"{models.label(model)}-k{k}-s{cfg.seed}-{sha256_json(key)[:10]}", key)
              for k, key in keys.items()}
    missing = sorted(k for k in steps if not stages[k].is_done())
    if missing:
        t0 = time.perf_counter()
        base = models.load(model, dtype="float32", seed=cfg.seed)
        moved = models.load(model, dtype="float32", seed=cfg.seed)

        def snapshot(k: int, loss: float | None) -> None:
            if k not in missing:
                return
            folder = stages[k].dir / "model"
            if k:
                moved.model.save_pretrained(folder, safe_serialization=True)
                moved.tokenizer.save_pretrained(folder)
            moved.model.eval()
            with torch.inference_mode():
                ppl = perplexity(moved, heldout_text, max_tokens=cfg.heldout_tokens)
            moved.model.train()
            start = {"model": str(folder) if k else model, "steps": k,
                     "distance": relative_distance(moved.model, base.model), "heldout_perplexity": ppl["perplexity"],
                     "heldout_tokens": ppl["tokens"], "final_loss": loss, "seconds": round(time.perf_counter() - t0, 1)}
            cached(stages[k], lambda stage: start, label=f"start {models.label(model)} k={k}")

        snapshot(0, None)
        if missing[-1]:
            print(f"[start] {models.label(model)}: {missing[-1]} steps of continued pretraining (starts at {missing})")
            _train(moved, text_blocks(moved, train_text, cfg.block_tokens), cfg, missing[-1], snapshot)
    for k in steps:
        if k not in missing:
            print(f"[start {models.label(model)} k={k}] cached: {stages[k].dir}")
    return [stages[k].outputs() for k in steps]
