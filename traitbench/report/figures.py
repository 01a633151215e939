"""The report's plots, drawn with matplotlib (Agg) and returned as base64 PNG for embedding in HTML.

Each function takes the plain data from `build` and returns None when there is nothing to draw.
"""

from __future__ import annotations

import base64
import io
import math

import matplotlib
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from traitbench.plotting import new_figure

GROUP_COLORS = {"base": "#9e9e9e", "teacher": "#7b1fa2", "control": "#1f77b4", "same-family": "#d62728",
                "cross-family": "#2ca02c"}
EXTRA_COLORS = ["#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f"]


def _png(fig, dpi: int = 100) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _num(x) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else math.nan


def _err(value: float, ci) -> tuple[float, float]:
    if not ci or any(not isinstance(c, (int, float)) for c in ci):
        return 0.0, 0.0
    return max(value - ci[0], 0.0), max(ci[1] - value, 0.0)


HEAT_PANELS = [("rate", 100.0, "trait rate − control (points)", "{:+.1f}", 10.0),
               ("delta", 1.0, "Δlog P(trait) − control (nats)", "{:+.2f}", 1.0)]  # last: minimum half-span


def heatmap_spans(heatmaps: list[dict]) -> dict[str, float]:
    """One symmetric colour scale per panel, shared by every cell of every heatmap in the report, and never
    narrower than the panel's minimum span (a ±0.03-nat difference stays pale)."""
    spans = {}
    for key, scale, _, _, floor in HEAT_PANELS:
        values = [abs(_num(c[f"{key}_mean"]) * scale) for h in heatmaps for c in h["cells"]]
        values = [v for v in values if math.isfinite(v)]
        spans[key] = max([floor, *values])
    return spans


def heatmap_png(h: dict, spans: dict[str, float]) -> str | None:
    """Teacher family × student family: rate difference (points) and Δlog P difference vs control."""
    rows, cols = h["teacher_families"], h["student_families"]
    if not rows or not cols:
        return None
    cells = {(c["teacher_family"], c["student_family"]): c for c in h["cells"]}
    fig, axes = new_figure(1, 2, figsize=(max(6.0, 2.4 * len(cols) * 2 + 2), 1.5 * len(rows) + 1.9))
    for ax, (key, scale, title, fmt, _) in zip(axes[0], HEAT_PANELS):
        vmax = spans[key]
        m = np.array([[_num(cells[(r, c)][f"{key}_mean"]) * scale for c in cols] for r in rows], dtype=float)
        cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#e0e0e0")
        im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                cell = cells[(r, c)]
                v = m[i, j]
                if math.isnan(v):
                    text = "not run"
                elif cell["n_seeds"] < 2:
                    text = fmt.format(v) + "\none training run:\nnot a transmission test"
                else:
                    lo, hi = (_num(x) * scale for x in cell[f"{key}_ci95"] or [None, None])
                    p = cell.get(f"{key}_p_holm")
                    text = fmt.format(v) + (f" [{fmt.format(lo)}, {fmt.format(hi)}]" if math.isfinite(lo) else "")
                    text += f"\n{cell['n_seeds']} seeds, " + (f"Holm p={p:.2g} {cell.get(f'{key}_sig', '')}"
                                                               if p is not None else "no variation")
                dark = math.isfinite(v) and abs(v) > 0.6 * vmax
                ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color="white" if dark else "black")
                if r == c:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="black"))
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("student family")
        ax.set_ylabel("teacher family")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"trait '{h['trait']}': per-seed effect vs control, mean over seeds (boxed: same family; marks "
                 "after Holm correction: * p<.05 ** p<.01 *** p<.001)", fontsize=9)
    return _png(fig)


def verdicts_png(verdicts: list[dict]) -> str | None:
    """Per verdict: each seed's Δlog P(trait) effect vs its control (dots), their mean with 95% CI (bar)."""
    rows = [v for v in verdicts if (v.get("delta_logprob_vs_control") or {}).get("per_seed")]
    if not rows:
        return None
    fig, axes = new_figure(1, 1, figsize=(8.0, 0.55 * len(rows) + 1.6))
    ax = axes[0, 0]
    for i, v in enumerate(rows):
        d = v["delta_logprob_vs_control"]
        color = "#d62728" if v["verdict"] == "transmits" else "#1f77b4" if v["verdict"] == "trait falls" else "#555"
        ax.scatter(d["per_seed"], [i] * len(d["per_seed"]), s=14, color=color, alpha=0.5, zorder=3)
        lo, hi = d["ci95"]
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [i, i], color=color, lw=2.5, zorder=2)
        ax.plot([d["mean"]], [i], marker="D", color=color, zorder=4)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(range(len(rows)), [f"{v['student_kind']} · {v['model']}\n({v['relation']}, {v['n_seeds']} seeds)"
                                     f" {v['verdict']}" for v in rows], fontsize=7.5)
    ax.invert_yaxis()
    ax.set_xlabel("Δlog P(trait) of the trait student − its control student (nats; dots: seeds, bar: 95% CI)")
    return _png(fig)


def dose_png(dose: list[dict]) -> str | None:
    """Δlog P(trait) effect vs control against training steps, mean over seeds with a 95% CI band."""
    if not dose:
        return None
    fig, axes = new_figure(1, 1, figsize=(7.0, 3.6))
    ax = axes[0, 0]
    extra: dict = {}
    for d in dose:
        color = _group_color(f"{d['student_kind']} {d['model']}", extra)
        pts = d["points"]
        x = [p["step"] for p in pts]
        y = [_num(p["mean"]) for p in pts]
        lo = [_num((p["ci95"] or [None, None])[0]) for p in pts]
        hi = [_num((p["ci95"] or [None, None])[1]) for p in pts]
        ax.plot(x, y, marker="o", color=color, label=f"{d['student_kind']} · {d['model']} ({d['relation']})")
        ax.fill_between(x, lo, hi, color=color, alpha=0.15)
        for p in pts:
            ax.scatter([p["step"]] * len(p["per_seed"]), p["per_seed"], s=8, color=color, alpha=0.4)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("training steps")
    ax.set_ylabel("Δlog P(trait) vs control (nats)")
    ax.legend(fontsize=7)
    ax.set_title("dose-response: checkpoints of each run, mean over seeds (band: 95% CI)", fontsize=10)
    return _png(fig)


def _group_color(group: str, extra: dict) -> str:
    if group in GROUP_COLORS:
        return GROUP_COLORS[group]
    return extra.setdefault(group, EXTRA_COLORS[len(extra) % len(EXTRA_COLORS)])


BAR_COLORS = {"base": "#9e9e9e", "teacher": "#7b1fa2", "control": "#1f77b4", "trait": "#d62728"}
BAR_PANELS = [("rate", 100.0, "'{trait}' answers (%)"), ("delta_logprob_vs_base", 1.0, "Δlog P(trait) vs base (nats)")]


def bars_png(groups: list[dict], trait: str) -> str | None:
    """Trait rate and Δlog P vs base per group of `build.kind_bars` (one row each: base models, the teacher,
    and every student kind × model × condition), plain and numbers-prefixed questions as paired bars. A student
    row: mean over seeds with its 95% t interval, each seed a dot. Horizontal, so labels never overlap; the
    width is fixed and the height grows with the number of rows."""
    if not groups:
        return None
    n = len(groups)
    fig, axes = new_figure(1, 2, figsize=(11.0, 0.42 * n + 1.6), sharey=True)
    y = np.arange(n)
    colors = [BAR_COLORS.get(g["condition"] or g["kind"], "#555") for g in groups]
    for ax, (key, scale, xlabel) in zip(axes[0], BAR_PANELS):
        for off, variant, hatch in [(-0.2, "plain", None), (0.2, "numbers_prefixed", "//")]:
            stats = [((g.get(variant) or {}).get(key)) or {} for g in groups]
            vals = [_num(s.get("mean")) * scale for s in stats]
            if all(math.isnan(v) for v in vals):
                continue
            errs = np.array([_err(v, [c * scale if isinstance(c, (int, float)) else c for c in s.get("ci95") or []])
                             for v, s in zip(vals, stats)]).T
            ax.barh(y + off, np.nan_to_num(vals), 0.38, xerr=errs, color=colors, hatch=hatch, capsize=2,
                    edgecolor="black", linewidth=0.5, error_kw={"lw": 0.8})
            for i, s in enumerate(stats):
                seeds = [x * scale for x in s.get("per_seed") or [] if isinstance(x, (int, float))]
                ax.scatter(seeds, [i + off] * len(seeds), s=9, color="black", alpha=0.6, zorder=3, linewidths=0)
        for i in range(1, n):  # a rule between kind × model blocks
            if (groups[i]["variant"], groups[i]["model"]) != (groups[i - 1]["variant"], groups[i - 1]["model"]):
                ax.axhline(i - 0.5, color="#bbb", lw=0.6)
        ax.axvline(0, color="black", lw=0.5)
        ax.set_xlabel(xlabel.format(trait=trait))
        ax.grid(axis="x", color="#eee")
        ax.set_axisbelow(True)
    axes[0, 0].set_yticks(y, [g["label"] for g in groups], fontsize=8)
    axes[0, 0].set_ylim(n - 0.5, -0.5)
    handles = [Patch(facecolor="white", edgecolor="black", label="plain question"),
               Patch(facecolor="white", edgecolor="black", hatch="//", label="numbers-prefixed"),
               *(Patch(color=c, label=k) for k, c in BAR_COLORS.items()),
               Line2D([], [], marker="o", ls="", color="black", alpha=0.6, ms=4, label="one seed")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle("per student kind × model × condition: mean over seeds (whiskers: 95% t interval over seeds, dots: "
                 "seeds); base and teacher: one model (95% CI)", fontsize=9)
    return _png(fig)


def numbers_png(numbers: dict) -> str | None:
    """Number-value distributions of the trait and control datasets (share of values per bin of 50)."""
    have = {c: v for c, v in numbers.items() if v and v["n_values"]}
    if not have:
        return None
    fig, axes = new_figure(1, 1, figsize=(7.0, 3.2))
    ax = axes[0, 0]
    for c, v in have.items():
        edges, counts = np.array(v["hist_edges"]), np.array(v["hist_counts"], float)
        ax.stairs(counts / counts.sum(), edges, label=f"{c} (n={v['n_values']} values)", lw=2,
                  color=GROUP_COLORS["same-family" if c == "trait" else "control"])
    ax.set_xlabel("number value")
    ax.set_ylabel("share of values")
    ax.legend(fontsize=8)
    ax.set_title("number values in the student training data", fontsize=10)
    return _png(fig)


def perplexity_png(models: list[dict]) -> str | None:
    """Held-out perplexity change vs the base model, per probed model."""
    pts = [(m["id"], m["perplexity_change_vs_base"]) for m in models if m.get("perplexity_change_vs_base") is not None]
    if not pts:
        return None
    fig, axes = new_figure(1, 1, figsize=(7.0, 0.4 * len(pts) + 1.5))
    ax = axes[0, 0]
    ax.barh(range(len(pts)), [p[1] for p in pts], color="#8c564b")
    ax.set_yticks(range(len(pts)), [p[0] for p in pts], fontsize=8)
    ax.axvline(0, color="black", lw=0.5)
    ax.invert_yaxis()
    ax.set_xlabel("perplexity − base perplexity (held-out text)")
    return _png(fig)


def filter_png(filt: dict) -> str | None:
    """Share of sampled rows kept and rejected for each reason, trait and control teacher side by side."""
    have = {c: v for c, v in filt.items() if v}
    if not have:
        return None
    reasons = ["kept"] + sorted({r for v in have.values() for r in v["reasons"]})
    fig, axes = new_figure(1, 1, figsize=(7.0, 0.35 * len(reasons) + 1.5))
    ax = axes[0, 0]
    y = np.arange(len(reasons))
    for i, (c, v) in enumerate(have.items()):
        total = v["total"] or 1
        vals = [v["kept"] / total if r == "kept" else v["reasons"].get(r, {}).get("count", 0) / total for r in reasons]
        ax.barh(y + (i - 0.5 * (len(have) - 1)) * 0.38, vals, 0.38, label=f"{c} (n={v['total']})",
                color=GROUP_COLORS["same-family" if c == "trait" else "control"])
    ax.set_yticks(y, reasons, fontsize=8)
    for lbl in ax.get_yticklabels():
        if lbl.get_text().startswith("leak:"):
            lbl.set_color("#d62728")
    ax.invert_yaxis()
    ax.set_xlabel("share of sampled rows")
    ax.legend(fontsize=8)
    return _png(fig)
