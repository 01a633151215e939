"""Model collapse in miniature (Shumailov et al. 2024; Gerstgrasser et al. 2024) with Gaussian mixtures.

Generation 0 fits a GaussianMixture to real data bundled with scikit-learn (standardized columns).
Generation g ≥ 1 draws `n_samples` points from generation g-1 and refits, either on those samples alone
(`replace`) or on the real data plus every synthetic sample so far (`accumulate`). Each regime runs
`n_chains` independent chains; chain c uses the same seed in both regimes, so generation 0 is shared.

Per generation and chain:
- spread: sqrt(trace) of the mixture's total covariance (exact);
- tail_mass: the fitted model's probability outside the real data's per-dimension [1st, 99th]
  percentile box (Monte Carlo, `n_eval_samples` draws; the real data itself has about 2% per dimension);
- distance: Wasserstein-1 between model samples and the real data; for d > 1 the sliced Wasserstein-1,
  the mean 1-D W1 over `n_projections` fixed random unit directions;
- real_loglik: the fitted model's mean log-likelihood of the real data.
Chains are aggregated per generation as mean with 95% t-interval, plus the median. Under `replace` the
typical chain loses its tails (the median tail mass falls towards 0), but the chain-mean tail mass is
roughly conserved: refitting is nearly unbiased, so the average over chains of generation g+1's model is
close to generation g's, and the few chains whose centre drifts carry mass beyond the original box.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator
from scipy.stats import wasserstein_distance
from sklearn import datasets as skdata
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName
from traitbench.stats import mean_ci95
from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json
from traitbench.manifest import array_sha256
from traitbench.plotting import new_figure, save_fig

Regime = Literal["replace", "accumulate"]
METRICS = ("spread", "tail_mass", "distance", "real_loglik")
LOADERS = {"wine": skdata.load_wine, "breast_cancer": skdata.load_breast_cancer, "diabetes": skdata.load_diabetes}


class GMMCollapseConfig(RunConfig):
    default_config: ClassVar[str | None] = "collapse-gmm"  # traitbench/configs/collapse-gmm.yaml
    name: RunName = "collapse-gmm"
    dataset: Literal["wine", "breast_cancer", "diabetes"] = "diabetes"
    features: list[str] = Field(
        default_factory=lambda: ["target"],
        min_length=1,
        description="dataset columns (feature names or 'target'); 2-D e.g. wine [alcohol, color_intensity]",
    )
    n_components: int = Field(3, ge=1)
    n_samples: int = Field(100, ge=2, description="synthetic samples drawn per generation")
    generations: int = Field(50, ge=1)
    n_chains: int = Field(10, ge=1)
    seed: int = 0
    regimes: list[Regime] = Field(default_factory=lambda: ["replace", "accumulate"], min_length=1)
    n_eval_samples: int = Field(5_000, ge=100, description="model samples for tail mass and distance")
    n_projections: int = Field(16, ge=1, description="directions of the sliced Wasserstein distance (d > 1)")

    @field_validator("regimes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("regimes must not repeat")
        return v


def load_real(dataset: str, features: list[str]) -> np.ndarray:
    """The chosen columns of a bundled scikit-learn dataset, standardized, shape [n, d]."""
    bunch = LOADERS[dataset]()
    names = [str(n) for n in bunch.feature_names]
    cols = []
    for f in features:
        if f == "target":
            cols.append(np.asarray(bunch.target, dtype=float))
        elif f in names:
            cols.append(bunch.data[:, names.index(f)].astype(float))
        else:
            raise TraitbenchError(f"{dataset} has no column {f!r}; choose from: target, {', '.join(names)}")
    x = np.stack(cols, axis=1)
    return (x - x.mean(0)) / x.std(0)


def sample(gmm: GaussianMixture, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from a fitted full-covariance mixture, using `rng` (not the model's random_state)."""
    weights = gmm.weights_ / gmm.weights_.sum()
    counts = rng.multinomial(n, weights)
    parts = [rng.multivariate_normal(m, c, size=k) for m, c, k in zip(gmm.means_, gmm.covariances_, counts) if k]
    return rng.permutation(np.concatenate(parts))


def total_spread(gmm: GaussianMixture) -> float:
    """sqrt(trace(Cov)) of the mixture: within-component plus between-component covariance."""
    w, mu = gmm.weights_, gmm.means_
    mean = w @ mu
    within = np.einsum("k,kii->", w, gmm.covariances_)
    between = w @ ((mu - mean) ** 2).sum(1)
    return float(np.sqrt(within + between))


class Evaluator:
    """Metrics of a fitted mixture against the real data; its random draws never touch a chain's RNG."""

    def __init__(self, real: np.ndarray, cfg: GMMCollapseConfig):
        self.real = real
        self.n_eval = cfg.n_eval_samples
        self.lo, self.hi = np.percentile(real, [1, 99], axis=0)
        d = real.shape[1]
        if d == 1:
            self.directions = np.ones((1, 1))
        else:
            v = np.random.default_rng([cfg.seed, 2**31]).normal(size=(cfg.n_projections, d))
            self.directions = v / np.linalg.norm(v, axis=1, keepdims=True)
        self.real_proj = real @ self.directions.T

    def __call__(self, gmm: GaussianMixture, rng: np.random.Generator) -> dict[str, float]:
        xs = sample(gmm, self.n_eval, rng)
        proj = xs @ self.directions.T
        return {
            "spread": total_spread(gmm),
            "tail_mass": float(np.mean(np.any((xs < self.lo) | (xs > self.hi), axis=1))),
            "distance": float(np.mean([wasserstein_distance(p, r) for p, r in zip(proj.T, self.real_proj.T)])),
            "real_loglik": float(gmm.score(self.real)),
        }


def run_chain(
    real: np.ndarray, cfg: GMMCollapseConfig, regime: Regime, chain: int, evaluate: Evaluator
) -> dict[str, list[float]]:
    """One chain of `cfg.generations` refits; per-generation metrics and training-set sizes."""
    rng = np.random.default_rng([cfg.seed, chain])
    eval_rng = np.random.default_rng([cfg.seed, chain, 1])
    out: dict[str, list[float]] = {m: [] for m in METRICS} | {"train_size": []}
    train = real
    for gen in range(cfg.generations + 1):
        gmm = GaussianMixture(cfg.n_components, covariance_type="full", random_state=int(rng.integers(2**31)))
        gmm.fit(train)
        for k, v in evaluate(gmm, eval_rng).items():
            out[k].append(v)
        out["train_size"].append(len(train))
        if gen < cfg.generations:
            synthetic = sample(gmm, cfg.n_samples, rng)
            train = synthetic if regime == "replace" else np.concatenate([train, synthetic])
    return out


def _aggregate(values: list[float]) -> dict:
    return mean_ci95(values) | {"median": float(np.median(values))}


def study(cfg: GMMCollapseConfig, out_dir: str | Path, progress: bool = True) -> tuple[dict, dict]:
    """Run every regime's chains, write summary.json and collapse_gmm.png to `out_dir`, return the summary."""
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    real = load_real(cfg.dataset, cfg.features)
    evaluate = Evaluator(real, cfg)
    per_regime = {}
    for regime in cfg.regimes:
        with threadpool_limits(1):  # tiny matrices: BLAS threads only add overhead
            chains = [
                run_chain(real, cfg, regime, c, evaluate)
                for c in tqdm(range(cfg.n_chains), desc=regime, disable=not progress, leave=False)
            ]
        per_regime[regime] = [
            {"gen": g, "train_size": chains[0]["train_size"][g]}
            | {m: _aggregate([ch[m][g] for ch in chains]) for m in METRICS}
            for g in range(cfg.generations + 1)
        ]
    summary = {
        "regimes": per_regime,
        "data": {"dataset": cfg.dataset, "features": cfg.features, "n_real": len(real), "dim": real.shape[1]},
        "seed": cfg.seed,
        "config": cfg.model_dump(),
        "timings_s": {"total": round(time.perf_counter() - t0, 2)},
    }
    atomic_write_json(out_dir / "summary.json", summary)
    plot(summary, out_dir / "collapse_gmm.png")
    return summary, {
        "seed": cfg.seed, "seconds": summary["timings_s"]["total"], "dataset_hashes": {cfg.dataset: array_sha256(real)}}


def plot(summary: dict, path: str | Path) -> Path:
    """Spread, tail mass, distance and real-data log-likelihood vs generation, mean with 95% CI bands."""
    fig, axes = new_figure(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6))
    titles = {
        "spread": "spread √tr Σ",
        "tail_mass": "tail mass (outside real 1–99% box)",
        "distance": "distance to real (W1)" if summary["data"]["dim"] == 1 else "distance to real (sliced W1)",
        "real_loglik": "mean log-lik of real data",
    }
    for ax, metric in zip(axes[0], METRICS):
        for regime, rows in summary["regimes"].items():
            gens = [r["gen"] for r in rows]
            mean = np.array([r[metric]["mean"] for r in rows])
            line = ax.plot(gens, mean, label=f"{regime} (mean)")[0]
            if metric == "tail_mass":
                medians = [r[metric]["median"] for r in rows]
                ax.plot(gens, medians, ls=":", color=line.get_color(), label=f"{regime} (median)")
            if all(r[metric]["ci95"] for r in rows):
                lo, hi = np.array([r[metric]["ci95"] for r in rows]).T
                ax.fill_between(gens, lo, hi, color=line.get_color(), alpha=0.2)
        ax.set_title(titles[metric], fontsize=10)
        if metric == "real_loglik":
            ax.set_yscale("symlog")
        ax.set_xlabel("generation")
    axes[0][1].legend(fontsize=8)
    d = summary["data"]
    n = summary["config"]["n_samples"]
    fig.suptitle(f"GMM collapse on {d['dataset']}: {', '.join(d['features'])} ({n} samples per generation)")
    return save_fig(fig, path)


def run(cfg: GMMCollapseConfig, out: Path) -> Result:
    """`traitbench collapse-gmm`: the study into `out`, and its table (printed)."""
    summary, provenance = study(cfg, out)
    lines = []
    header = f"{'regime':<11} {'gen':>4}  {'spread [95% CI]':<22} {'tail':>6} {'tail_med':>8} {'dist':>6}"
    lines.append(f"{header} {'loglik':>8}")
    for regime, rows in summary["regimes"].items():
        for r in (rows[0], rows[len(rows) // 2], rows[-1]):
            sp, tail = r["spread"], r["tail_mass"]
            ci = "[{:.3f}, {:.3f}]".format(*sp["ci95"]) if sp["ci95"] else "-"
            lines.append(
                f"{regime:<11} {r['gen']:>4}  {sp['mean']:.3f} {ci:<16} {tail['mean']:>6.3f}"
                f" {tail['median']:>8.3f} {r['distance']['mean']:>6.3f} {r['real_loglik']['mean']:>8.2f}"
            )
    lines.append(f"{cfg.n_chains} chains; {summary['timings_s']['total']:.0f} s")
    return Result(out, "\n".join(lines), [out / "summary.json"], manifest=provenance)
