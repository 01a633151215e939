"""Positive control for subliminal learning: auxiliary-logit distillation on noise (Cloud et al. 2025, §6).

An MLP 64-256-256-(10+3) on scikit-learn's 8×8 digits. The teacher, a copy of an initialization, is
trained on the 10 class logits only. A student is distilled from the teacher on the 3 auxiliary logits
only, on uniform noise images: it never sees a digit or a class logit. A student that shares the
teacher's initialization still learns to classify digits; a student from another initialization (a
derangement of the inits, so never its own) stays at chance. Distilling all 13 logits on noise is a
reference.

Distillation loss: KL(teacher ‖ student) between softmaxes over the distilled logits, the usual
distillation loss and the one public re-implementations of the paper's MNIST experiment use
(`distill_loss: mse` matches raw logits instead). Every model of every condition trains in one batched
MLP on noise shared across conditions; summing per-model losses keeps each model's Adam run independent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm.auto import tqdm

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName
from traitbench.stats import mean_ci95
from traitbench.threads import torch_threads
from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json
from traitbench.manifest import array_sha256
from traitbench.plotting import new_figure, save_fig

N_CLASSES = 10
CHANCE = 1.0 / N_CLASSES


class AuxLogitConfig(RunConfig):
    default_config: ClassVar[str | None] = "aux-logit"  # traitbench/configs/aux-logit.yaml
    name: RunName = "aux-logit"
    seed: int = 0
    n_models: int = Field(10, ge=2, description="models per condition; a derangement needs at least 2")
    hidden: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    n_aux: int = Field(3, ge=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)
    teacher_steps: int = Field(150, ge=1)
    student_steps: int = Field(2000, ge=1)
    distill_loss: Literal["kl", "mse"] = "kl"
    noise_low: float = Field(-1.0, description="noise ~ uniform[noise_low, noise_high]; digits lie in [-1, 1]")
    noise_high: float = 1.0
    all_logit_distill: bool = True
    eval_every: int = Field(100, ge=1, description="steps between test-accuracy points of the distillation")
    threads: int = Field(
        1, ge=1, description="torch threads; these small matmuls gain little from more, and oversubscribed "
        "threads on a busy machine run many times slower"
    )

    @model_validator(mode="after")
    def _check_noise(self) -> "AuxLogitConfig":
        if self.noise_low >= self.noise_high:
            raise ValueError("noise_low must be below noise_high")
        return self


def derangement(n: int, rng: np.random.Generator) -> list[int]:
    """A uniformly random permutation of range(n) with no fixed points (rejection sampling)."""
    if n < 2:
        raise TraitbenchError(f"a derangement needs at least 2 elements, got {n}")
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm.tolist()


class BatchedMLP(nn.Module):
    """M independent ReLU MLPs in one module: layer weights have shape [M, in, out], biases [M, 1, out]."""

    def __init__(self, n_models: int, sizes: list[int], generator: torch.Generator | None = None):
        super().__init__()
        self.sizes = list(sizes)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(sizes, sizes[1:]):
            bound = d_in**-0.5  # torch.nn.Linear's default init, drawn independently per model
            w = (torch.rand(n_models, d_in, d_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(n_models, 1, d_out, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    @property
    def n_models(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [M, B, in] (one batch per model) or [B, in] (shared) -> logits [M, B, out]."""
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w) if h.dim() == 3 else torch.matmul(h, w) + b
            if i < last:
                h = torch.relu(h)
        return h

    def select(self, index: list[int]) -> "BatchedMLP":
        """A new, independent BatchedMLP holding copies of models `index` (in that order)."""
        out = BatchedMLP.__new__(BatchedMLP)
        nn.Module.__init__(out)
        out.sizes = list(self.sizes)
        out.weights = nn.ParameterList(nn.Parameter(w.detach()[index].clone()) for w in self.weights)
        out.biases = nn.ParameterList(nn.Parameter(b.detach()[index].clone()) for b in self.biases)
        return out


def load_data(test_fraction: float, seed: int) -> tuple[torch.Tensor, ...]:
    """Digits scaled to [-1, 1] (pixels are 0..16), split stratified by class under `seed`."""
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32) / 8.0 - 1.0
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte), torch.from_numpy(yte)


@torch.no_grad()
def accuracy(model: BatchedMLP, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Per-model test accuracy from the argmax of the class logits."""
    pred = model(x)[..., :N_CLASSES].argmax(-1)
    return (pred == y).float().mean(1).tolist()


def _fit(
    model: BatchedMLP,
    loss_fn: Callable[[BatchedMLP], torch.Tensor],
    steps: int,
    lr: float,
    desc: str,
    progress: bool,
    evaluate: Callable[[BatchedMLP], Any] | None = None,
    eval_every: int = 0,
) -> list:
    """Adam on the sum of per-model losses; `evaluate` results at step 0, every `eval_every` steps and the end."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    curve = [evaluate(model)] if evaluate else []
    for step in tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False):
        opt.zero_grad(set_to_none=True)
        loss_fn(model).sum().backward()
        opt.step()
        if evaluate and (step % eval_every == 0 or step == steps):
            curve.append(evaluate(model))
    return curve


def _teacher_loss(xtr: torch.Tensor, ytr: torch.Tensor, batch: int, gen: torch.Generator):
    def loss(model: BatchedMLP) -> torch.Tensor:
        idx = torch.randint(0, len(xtr), (model.n_models, batch), generator=gen)
        logits = model(xtr[idx])[..., :N_CLASSES]
        ce = F.cross_entropy(logits.reshape(-1, N_CLASSES), ytr[idx].reshape(-1), reduction="none")
        return ce.view(model.n_models, batch).mean(1)

    return loss


def _distill_loss(teacher: BatchedMLP, aux_only: torch.Tensor, cfg: AuxLogitConfig, gen: torch.Generator):
    """Per-student loss on fresh uniform noise shared by all conditions: students are stacked in blocks of
    the teachers' order, and `aux_only` (one flag per student) picks aux-logit or all-logit distillation."""
    n_teachers, n_in = teacher.n_models, teacher.sizes[0]

    def match(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if cfg.distill_loss == "mse":
            return (s - t).pow(2).mean((1, 2))
        kl = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="none")
        return kl.sum(-1).mean(1)

    def loss(model: BatchedMLP) -> torch.Tensor:
        x = torch.rand(n_teachers, cfg.batch_size, n_in, generator=gen)
        x = cfg.noise_low + (cfg.noise_high - cfg.noise_low) * x
        reps = model.n_models // n_teachers
        with torch.no_grad():
            t = teacher(x).repeat(reps, 1, 1)
        s = model(x.repeat(reps, 1, 1))
        aux = slice(N_CLASSES, None)
        return torch.where(aux_only, match(s[..., aux], t[..., aux]), match(s, t))

    return loss


def study(cfg: AuxLogitConfig, out_dir: str | Path, progress: bool = True) -> tuple[dict, dict]:
    """Train teachers and students, write summary.json and aux_logit.png to `out_dir`, return the summary."""
    with torch_threads(cfg.threads):
        return _run(cfg, Path(out_dir), progress)


def _run(cfg: AuxLogitConfig, out_dir: Path, progress: bool) -> tuple[dict, dict]:
    t_start = time.perf_counter()
    torch_gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    xtr, ytr, xte, yte = load_data(cfg.test_fraction, cfg.seed)
    sizes = [xtr.shape[1], *cfg.hidden, N_CLASSES + cfg.n_aux]
    M = cfg.n_models
    ident = list(range(M))

    init = BatchedMLP(M, sizes, torch_gen)
    results = {"untrained": accuracy(init, xte, yte)}
    teacher = init.select(ident)
    teacher_loss = _teacher_loss(xtr, ytr, cfg.batch_size, torch_gen)
    _fit(teacher, teacher_loss, cfg.teacher_steps, cfg.lr, "teacher", progress)
    teacher.requires_grad_(False)
    results["teacher"] = accuracy(teacher, xte, yte)
    t_teacher = time.perf_counter() - t_start

    # Student block c, model m starts from init start[m] and is distilled from teacher m.
    perm = derangement(M, rng)
    conditions = {"same_init": (ident, True), "cross_init": (perm, True)}
    if cfg.all_logit_distill:
        conditions |= {"all_logit_same_init": (ident, False), "all_logit_cross_init": (perm, False)}
    students = init.select([i for start, _ in conditions.values() for i in start])
    aux_only = torch.tensor([flag for _, flag in conditions.values() for _ in range(M)])

    def by_condition(model: BatchedMLP) -> dict[str, list[float]]:
        acc = accuracy(model, xte, yte)
        return {name: acc[c * M : (c + 1) * M] for c, name in enumerate(conditions)}

    curve = _fit(
        students, _distill_loss(teacher, aux_only, cfg, torch_gen), cfg.student_steps, cfg.lr, "students",
        progress, evaluate=lambda m: {k: float(np.mean(v)) for k, v in by_condition(m).items()},
        eval_every=cfg.eval_every,
    )
    results |= by_condition(students)
    t_total = time.perf_counter() - t_start

    steps = [0, *range(cfg.eval_every, cfg.student_steps + 1, cfg.eval_every)]
    if steps[-1] != cfg.student_steps:
        steps.append(cfg.student_steps)
    summary = {
        **{name: {**mean_ci95(vals), "values": vals} for name, vals in results.items()},
        "chance": CHANCE,
        "derangement": perm,
        "curves": {"steps": steps, "accuracy": {name: [point[name] for point in curve] for name in conditions}},
        "n_train": len(xtr),
        "n_test": len(xte),
        "seed": cfg.seed,
        "config": cfg.model_dump(),
        "timings_s": {
            "teacher": round(t_teacher, 2),
            "students": round(t_total - t_teacher, 2),
            "total": round(t_total, 2),
        },
    }
    atomic_write_json(out_dir / "summary.json", summary)
    plot(summary, out_dir / "aux_logit.png")
    return summary, {
        "seed": cfg.seed, "seconds": summary["timings_s"]["total"],
        "dataset_hashes": {"sklearn-digits-split": array_sha256(xtr, ytr, xte, yte)}}


def plot(summary: dict, path: str | Path) -> Path:
    """Bars of mean test accuracy with 95% CI whiskers and the chance line; accuracy during distillation."""
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    ax, ax_curve = axes[0]
    names = ["untrained", "teacher", *summary["curves"]["accuracy"]]
    means = [summary[n]["mean"] for n in names]
    errs = [
        [m - (summary[n]["ci95"] or [m, m])[0] for n, m in zip(names, means)],
        [(summary[n]["ci95"] or [m, m])[1] - m for n, m in zip(names, means)],
    ]
    ax.bar(range(len(names)), means, yerr=errs, capsize=4, color="tab:blue", alpha=0.8)
    ax.axhline(summary["chance"], color="grey", ls="--", label="chance")
    ticks = [f"{n}\n{m:.2f}".replace("_", "\n") for n, m in zip(names, means)]
    ax.set_xticks(range(len(names)), ticks, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("digits test accuracy")
    ax.set_title(f"aux-logit distillation on noise (n={summary['teacher']['n']} models, 95% CI)")
    ax.legend()
    steps = summary["curves"]["steps"]
    for name, curve in summary["curves"]["accuracy"].items():
        ax_curve.plot(steps, curve, label=name)
    ax_curve.axhline(summary["chance"], color="grey", ls="--")
    ax_curve.set_xlabel("distillation step")
    ax_curve.set_ylabel("mean test accuracy")
    ax_curve.set_ylim(0, 1)
    ax_curve.legend(fontsize=8, loc="center right", bbox_to_anchor=(1, 0.4))
    return save_fig(fig, path)


def run(cfg: AuxLogitConfig, out: Path) -> Result:
    """`traitbench aux-logit`: the study into `out`, and its table (printed)."""
    summary, provenance = study(cfg, out)
    lines = []
    lines.append(f"{'condition':<22} {'accuracy':>8}  95% CI")
    for name in ("untrained", "teacher", *summary["curves"]["accuracy"]):
        s = summary[name]
        ci = "[{:.3f}, {:.3f}]".format(*s["ci95"]) if s["ci95"] else "-"
        lines.append(f"{name:<22} {s['mean']:>8.3f}  {ci}")
    lines.append(f"chance {CHANCE:.2f}; {cfg.n_models} models; {summary['timings_s']['total']:.0f} s")
    return Result(out, "\n".join(lines), [out / "summary.json"], manifest=provenance)
