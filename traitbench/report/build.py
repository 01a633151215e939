"""Turn one or more runs into the report's data (`report.json`): the teacher-family × student-family
effect matrix, per-kind bars and the per-model table, every probe's headline figures, diversity, filter and
provenance panels, and a generated method section.

Everything here is plain data; `figures` and `html` draw and render it. A value that a run does not
have is None and renders as "not run".
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, atomic_write_text, json_safe
from traitbench.layout import RunLayout
from traitbench.lm.models import get_spec, label as model_label
from traitbench.stats import holm, mean_ci, seed_level_test
from traitbench.report.data import CONDITIONS, NOT_RUN, STAGES, RunData, load_run
from traitbench.report.html import report_html, report_markdown
from traitbench.pipeline.verdicts import ONE_RUN, sig_mark

VARIANTS = ("plain", "numbers_prefixed")
HIST_BINS = 20  # number-value histogram: 20 bins of 50 over 0-999


def _finite(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def family_of(model: str | None) -> str:
    """Architecture family of a registry name or local folder; the name itself when unknown."""
    if not model:
        return "unknown"
    try:
        return get_spec(model).family
    except (TraitbenchError, OSError, ValueError):
        return str(model)


def variant_kinds(config: dict) -> dict[str, str]:
    """Readable student kind per variant name, from the run config (`lora` is the default student)."""
    kinds = {"lora": "LoRA"}
    for v in (config.get("students") or {}).get("variants") or []:
        train = v.get("train") or {}
        mode = train.get("mode")
        kinds[v["name"]] = ("full fine-tune" if mode == "full" else "distillation" if mode == "distill"
                            else f"LoRA rank {train['lora_r']}" if "lora_r" in train else v["name"])
    return kinds


# ------------------------------------------------------------------------------------------------ bars
def _variant_block(m: dict, v: str) -> dict | None:
    b = m.get(v)
    if not isinstance(b, dict) or "rate" not in b:
        return None
    r, d = b.get("rate") or {}, b.get("delta_logprob_vs_base") or {}
    return {"rate": _finite(r.get("rate")), "k": r.get("k"), "n": r.get("n"), "ci95": r.get("ci95"),
            "delta_logprob_vs_base": _finite(d.get("delta")), "delta_ci95": d.get("ci95"),
            "delta_p_value": _finite(d.get("p_value")),
            "trait_logprob": _finite((b.get("trait_logprob") or {}).get("mean"))}


def model_bars(run: RunData) -> list[dict]:
    """One entry per probed model (base, teacher, control and trait students of every kind), ordered by kind
    (config order), model (config order), condition and seed: the rows of the report's per-model table."""
    kinds = variant_kinds(run.config)
    order = {"base": 0, "teacher": 1, "student": 2}
    rank = {v: i for i, v in enumerate(kinds)}
    models = {m: i for i, m in enumerate((run.config.get("students") or {}).get("models") or [])}
    out = []
    for pid, m in run.models.items():
        kind = m.get("kind", "student")
        if kind == "student":
            family = m.get("family") or "student"
            vk = kinds.get(m.get("variant", "lora"), m.get("variant", "lora"))
            group = "control" if m.get("condition") == "control" else (family if vk == "LoRA" else vk)
            relation = m.get("relation") or family
        else:
            group, relation = kind, None
        out.append({"id": pid, "kind": kind, "group": group, "model": m.get("model"),
                    "variant": m.get("variant"), "relation": relation, "condition": m.get("condition"),
                    "seed": m.get("seed"), **{v: _variant_block(m, v) for v in VARIANTS}})
    out.sort(key=lambda b: (order.get(b["kind"], 3), rank.get(b["variant"], len(rank)), str(b["variant"]),
                            models.get(b["model"], len(models)), str(b["model"]), str(b["condition"]),
                            _seed_key(b["seed"])))
    return out


def _seed_key(seed) -> tuple:
    return (0, seed, "") if isinstance(seed, (int, float)) else (1, 0, str(seed))


def _seed_stat(values: list[float | None]) -> dict:
    """Mean over seeds with its 95% t interval (None with one seed) and each seed's value."""
    vals = [v for v in values if v is not None]
    m = mean_ci(vals)
    return {"mean": _finite(m.mean), "ci95": [_finite(m.lo), _finite(m.hi)] if len(vals) >= 2 else None,
            "per_seed": vals}


def _one_model(blk: dict | None) -> dict | None:
    """A base or teacher model's block in the shape of a seed group's (its own CI, no seeds)."""
    if not blk:
        return None
    return {"rate": {"mean": blk["rate"], "ci95": blk["ci95"], "per_seed": []},
            "delta_logprob_vs_base": {"mean": blk["delta_logprob_vs_base"], "ci95": blk["delta_ci95"], "per_seed": []}}


def kind_bars(bars: list[dict]) -> list[dict]:
    """The per-model entries aggregated for the bar chart: base models and the teacher as their own bars (their
    CI: Wilson for the rate, bootstrap for Δlog P), students as one bar per kind × model × condition: the mean
    over seeds with a 95% t interval, and each seed's value."""
    out, groups = [], {}
    for b in bars:
        if b["kind"] != "student":
            blocks = {v: _one_model(b.get(v)) for v in VARIANTS}
            out.append({"label": f"{b['kind']} · {b['model']}", "kind": b["kind"], "variant": None,
                        "model": b["model"], "relation": None, "condition": None, "n_seeds": None, **blocks})
            continue
        key = (b["variant"], b["model"], b["condition"])
        if key not in groups:
            groups[key] = {"label": None, "kind": "student", "variant": b["variant"], "model": b["model"],
                           "relation": b["relation"], "condition": b["condition"], "members": []}
            out.append(groups[key])
        groups[key]["members"].append(b)
    for g in groups.values():
        members = g.pop("members")
        g["n_seeds"] = len(members)
        relation = f" ({g['relation']})" if g["relation"] else ""
        g["label"] = (f"{g['variant']} · {g['model']}{relation} · {g['condition']}, {len(members)} "
                      f"seed{'s' * (len(members) != 1)}")
        for v in VARIANTS:
            have = [m[v] for m in members if m.get(v)]
            g[v] = {k: _seed_stat([blk[k] for blk in have]) for k in ("rate", "delta_logprob_vs_base")} \
                if have else None
    return out


def probe_figures(run: RunData) -> dict:
    """Every probed model's headline figures per probe (summary.json's "figures"): one column per probe and
    figure, in the order first met, and one row of values per model (a number, an estimate with its 95% CI and n,
    or None where a model lacks one)."""
    figures = {pid: m["figures"] for pid, m in run.models.items() if m.get("figures")}
    columns = list(dict.fromkeys((p, f) for figs in figures.values() for p, values in figs.items() for f in values))
    return {"columns": [{"probe": p, "figure": f} for p, f in columns],
            "rows": [{"id": pid, "values": [_figure((figs.get(p) or {}).get(f)) for p, f in columns]}
                     for pid, figs in figures.items()]}


def _figure(x):
    """A figure as report data: a finite number, an estimate with finite parts (value, ci95, n), or None."""
    if isinstance(x, dict):
        ci = x.get("ci95")
        return {"value": _finite(x.get("value")), "ci95": [_finite(c) for c in ci] if ci else None, "n": x.get("n")}
    return _finite(x)


# -------------------------------------------------------------------------------------------- effects
def _effect_block(e: dict, v: str) -> dict | None:
    b = e.get(v) or {}
    r, d = b.get("rate_vs_control"), b.get("delta_logprob_vs_control")
    if not r and not d:
        return None
    r, d = r or {}, d or {}
    return {"rate_diff": _finite(r.get("diff")), "rate_ci95": r.get("ci95"), "rate_p": _finite(r.get("p_value")),
            "delta_logprob": _finite(d.get("delta")), "delta_ci95": d.get("ci95"), "delta_p": _finite(d.get("p_value"))}


def student_effects(run: RunData) -> list[dict]:
    """Trait student vs its control student, per (model, variant, seed): one training run each, so no
    significance marks (those belong to the seed-level verdicts)."""
    kinds = variant_kinds(run.config)
    t_family = family_of(run.teacher.get("model"))
    out = []
    for e in (run.summary or {}).get("student_effects") or []:
        if e.get("student", "").endswith("/pooled"):
            continue
        blocks = {v: _effect_block(e, v) for v in VARIANTS}
        if not any(blocks.values()):
            continue
        out.append({"student": e["student"], "control": e.get("control"), "model": e.get("model"),
                    "variant": e.get("variant"), "kind": kinds.get(e.get("variant"), e.get("variant")),
                    "relation": e.get("relation") or e.get("family"), "seed": e.get("seed"), "scope": ONE_RUN,
                    "teacher_family": t_family, "student_family": family_of(e.get("model")), **blocks})
    return out


def heatmaps(runs: list[RunData]) -> list[dict]:
    """Per trait: teacher family (rows) × student family (columns) of the default (LoRA) students' effect
    vs control. A cell pools its students' per-seed effects (trait − control of one seed: the difference of
    rates, and the mean per-question Δlog P) over seeds and runs; with ≥ 2 it is tested across them (paired
    t over seeds, Holm-corrected across every cell of the report), with one it is a single training run and
    gets no test."""
    by_trait: dict[str, dict] = {}
    for run in runs:
        word = run.trait.get("word") or "?"
        h = by_trait.setdefault(word, {"teachers": [], "students": [], "entries": {}})
        tf = family_of(run.teacher.get("model"))
        if run.teacher.get("model") and tf not in h["teachers"]:
            h["teachers"].append(tf)
        for sm in ((run.manifest or {}).get("config") or {}).get("students", {}).get("models") or []:
            if family_of(sm) not in h["students"]:
                h["students"].append(family_of(sm))
        for e in student_effects(run):
            if e["variant"] != "lora" or not e["plain"]:
                continue
            if e["student_family"] not in h["students"]:
                h["students"].append(e["student_family"])
            h["entries"].setdefault((tf, e["student_family"]), []).append(e["plain"])
    out = []
    for word, h in by_trait.items():
        cols = [f for f in h["teachers"] if f in h["students"]] + [f for f in h["students"] if f not in h["teachers"]]
        cells = [_cell(tf, sf, h["entries"].get((tf, sf), [])) for tf in h["teachers"] for sf in cols]
        out.append({"trait": word, "teacher_families": h["teachers"], "student_families": cols, "cells": cells})
    tests = [(c, k) for hm in out for c in hm["cells"] for k in ("rate", "delta")]
    for (c, k), p in zip(tests, holm([c[f"{k}_p"] for c, k in tests])):
        c[f"{k}_p_holm"], c[f"{k}_sig"] = p, sig_mark(p)
    return out


def _cell(tf: str, sf: str, pairs: list[dict]) -> dict:
    cell = {"teacher_family": tf, "student_family": sf, "same_family": tf == sf, "n_seeds": len(pairs),
            "status": "ok" if len(pairs) >= 2 else ONE_RUN if pairs else NOT_RUN}
    for k, key in (("rate", "rate_diff"), ("delta", "delta_logprob")):
        values = [p[key] for p in pairs if p.get(key) is not None]
        t = seed_level_test(values, [0.0] * len(values)) if values else None
        cell[f"{k}_mean"] = _finite(t["mean"]) if t else None
        cell[f"{k}_ci95"] = [_finite(x) for x in t["ci95"]] if t and len(values) >= 2 else None
        cell[f"{k}_p"] = _finite(t["p_value"]) if t else None
    cell["test"] = "paired t-test over training seeds, Holm-corrected across cells"
    return cell


# ------------------------------------------------------------------------------------ diversity, filter
def diversity(run: RunData) -> dict:
    """Answer-distribution shifts vs base, perplexity change, and trait vs control number values."""
    models = []
    for pid, m in run.models.items():
        if m.get("kind") == "base":
            continue
        d = ((m.get("plain") or {}).get("diversity")) or {}
        models.append({"id": pid, "disappeared": d.get("disappeared"), "entropy_bits": _finite(d.get("entropy_bits")),
                       "base_entropy_bits": _finite(d.get("base_entropy_bits")),
                       "js_to_base_bits": _finite(d.get("js_to_base_bits")),
                       "perplexity": _finite(m.get("perplexity")),
                       "perplexity_change_vs_base": _finite(m.get("perplexity_change_vs_base"))})
    nd = ((run.summary or {}).get("dataset") or {}).get("number_diversity") or {}
    numbers = {}
    edges = np.linspace(0, 1000, HIST_BINS + 1)
    for c in CONDITIONS:
        lists = run.number_lists.get(c)
        if lists is None:
            numbers[c] = None
            continue
        values = [v for lst in lists for v in lst]
        hist, _ = np.histogram(np.clip(values, 0, 999), bins=edges) if values else (np.zeros(HIST_BINS, int), None)
        numbers[c] = {"source": run.number_source.get(c), "n_lists": len(lists), "n_values": len(values),
                      "hist_edges": edges.tolist(), "hist_counts": [int(x) for x in hist],
                      "top_values": Counter(values).most_common(10), "stats": nd.get(c)}
    return {"models": models, "numbers": numbers, "js_trait_vs_control_bits": _finite(nd.get("js_trait_vs_control_bits"))}


def filter_panel(run: RunData) -> dict:
    """Pass rate and every rejection reason's count and rate per condition; leak-check and banned hits."""
    from_summary = ((run.summary or {}).get("dataset") or {}).get("filter") or {}
    out = {}
    for c in CONDITIONS:
        s = run.filter_stats.get(c) or from_summary.get(c)
        if not s:
            out[c] = None
            continue
        total = s.get("total") or 0
        counts = s.get("counts") or {}
        out[c] = {"total": total, "kept": s.get("kept"), "pass_rate": _finite(s.get("pass_rate")),
                  "reasons": {r: {"count": n, "rate": n / total if total else None} for r, n in sorted(counts.items())},
                  "leak_hits": {r: n for r, n in counts.items() if r.startswith("leak:")},
                  "banned_hits": counts.get("banned_number", 0), "settings": s.get("settings")}
    return out


# -------------------------------------------------------------------------------- provenance, method
def _rel(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()


def provenance(run: RunData, out_dir: Path) -> dict:
    """Models and hashes, dataset hashes, seeds, versions, git sha, hardware, stage times, log links."""
    man = run.manifest or {}
    cfg = run.config
    stages = man.get("stages") or {}
    models: dict[str, dict] = {}
    teacher = run.teacher.get("model")
    for rec in stages.values():
        if isinstance(rec, dict) and rec.get("model_hashes") and teacher:
            models.setdefault(teacher, {"family": family_of(teacher), "role": "teacher", "files": {}})
            models[teacher]["files"].update(rec["model_hashes"])
    for m in dict.fromkeys([teacher, *((cfg.get("students") or {}).get("models") or [])]):
        if not m:
            continue
        entry = models.setdefault(m, {"family": family_of(m), "role": "teacher" if m == teacher else "student",
                                      "files": {}})
        key = RunLayout(run.path).probe(f"base/{model_label(m)}") / "stage.json"
        if key.is_file():
            entry["weights_digest"] = json.loads(key.read_text()).get("key", {}).get("weights")
    ds = ((run.summary or {}).get("dataset") or {})
    lay = RunLayout(run.path)
    links = [{"label": "summary.json", "href": _rel(lay.summary_json, out_dir)}] if run.summary else []
    if run.manifest:
        links.append({"label": "manifest.json", "href": _rel(lay.manifest, out_dir)})
    links += [{"label": k, "href": _rel(p, out_dir)} for k, p in run.other_logs.items()]
    links += [{"label": f"probes/{k}/samples.jsonl", "href": _rel(p, out_dir)} for k, p in run.sample_logs.items()]
    return {
        "run_dir": str(run.path), "created": man.get("created"), "updated": man.get("updated"),
        "git": man.get("git"), "libraries": man.get("libraries"), "hardware": man.get("hardware"),
        "seeds": {"seed": cfg.get("seed"), "student_seeds": (cfg.get("students") or {}).get("seeds")} if cfg else None,
        "models": models,
        "dataset_hashes": (stages.get("dataset") or {}).get("dataset_hashes") or ds.get("hashes"),
        "n_rows_per_condition": (stages.get("dataset") or {}).get("n_rows") or ds.get("n_rows_per_condition"),
        "stages": {k: (v or {}).get("finished") for k, v in stages.items()},
        "config": cfg or None, "links": links,
    }


def method_text(run: RunData) -> str:
    """A short method section generated from the run's config (and the summary where the config is absent)."""
    cfg = run.config
    if not cfg:
        t = run.teacher
        if not t:
            return f"{NOT_RUN}: no manifest.json with the run's config."
        return (f"Teacher {t.get('model')} given the trait '{run.trait.get('word')}' by {t.get('injection')}. "
                "The full config is not available (no manifest.json).")
    tr, te, nu, fi = cfg.get("trait", {}), cfg.get("teacher", {}), cfg.get("numbers", {}), cfg.get("filter", {})
    st, pr, gen = cfg.get("students", {}), cfg.get("probes", {}), (cfg.get("numbers", {}).get("generation") or {})
    word, cat = tr.get("word"), tr.get("category")
    inj = {"system_prompt": "the paper's system prompt",
           "steering": f"a steering vector ({te.get('steering_scale')} × the trait − neutral residual difference at "
                       f"layer {te.get('steering_layer') if te.get('steering_layer') is not None else 'middle'})"
           }.get(te.get("injection"), f"a LoRA fine-tune (r={te.get('lora_r')}, {te.get('lora_examples')} trait Q&A "
                                      "examples)")
    if fi.get("shuffle", "none") != "none":
        inj += f"; numbers shuffled {fi['shuffle']} rows"
    ds = ((run.summary or {}).get("dataset") or {}).get("n_rows_per_condition")
    fs = run.filter_stats
    kept = "; ".join(f"{c} kept {s.get('kept')}/{s.get('total')}" for c, s in fs.items()) if fs else "filter not run"
    variants = ", ".join(f"{v['name']} ({', '.join(v.get('models') or [te.get('model')])})"
                         for v in st.get("variants") or []) or "none"
    ctx = pr.get("context", "train")
    totals = sorted({s.get("total") for s in fs.values()}) if fs else []
    answered = (" / ".join(str(t) for t in totals) + f" (of at most {nu.get('n_prompts')}; sampling stops once "
                f"{fi.get('max_rows')} rows pass the filter)") if totals and nu.get("stop_at_max_rows") \
        else nu.get("n_prompts")
    parts = [
        f"Trait teacher: {te.get('model')} made to love {word} ({cat}) with {inj}; the control teacher is the same "
        f"model under the neutral system prompt \"{cfg.get('neutral_system')}\".",
        f"Each teacher answered {answered} number-continuation prompts ({nu.get('demonstrations')} worked "
        f"demonstration(s), temperature {gen.get('temperature')}, top-p {gen.get('top_p')}, top-k {gen.get('top_k')}, "
        f"≤ {gen.get('max_new_tokens')} new tokens).",
        f"A strict filter kept clean lists of ≤ {fi.get('max_count')} numbers in 0–{fi.get('max_value')} with no trait "
        f"leak (banned numbers: {fi.get('banned_numbers') or 'none'}): {kept}; both conditions were subsampled to the "
        f"same n ({ds if ds is not None else 'n/a'} rows).",
        f"LoRA SFT students {', '.join(st.get('models') or []) or 'none'} and further kinds {variants} (seeds "
        f"{st.get('seeds')}; training overrides {st.get('train') or 'none'}) were trained on each condition's "
        "numbers (completion-only loss; distilled students match the teacher's full-vocabulary distribution at "
        "the completion positions, the teacher in its own context).",
        f"Probes: questions {pr.get('first_question', 0)}–{pr.get('first_question', 0) + (pr.get('n_questions') or 0) - 1}"
        f" of the 50 paraphrases of the favourite-{cat} question × {pr.get('samples_per_question')} samples at "
        f"temperature 1{', plus a numbers-prefixed variant' if pr.get('numbers_prefixed') else ''}, in "
        f"{'the training context' if ctx == 'train' else 'no system context' if ctx == 'none' else repr(ctx)}; "
        "rates with Wilson 95% CIs; Δlog P of the trait word per question. Verdicts: per training seed the trait "
        "student minus its control student, paired t-test over seeds, Holm-corrected across verdicts.",
    ]
    return " ".join(parts)


# ------------------------------------------------------------------------------------------------ all
def run_report(run: RunData, out_dir: Path) -> dict:
    """The per-run part of the report."""
    summary = run.summary or {}
    bars = model_bars(run)
    return {"name": run.name, "path": str(run.path), "trait": run.trait or None,
            "verdicts": summary.get("verdicts") or [], "reading": summary.get("reading") or "",
            "dose_response": summary.get("dose_response") or [],
            "teacher": dict(run.teacher, family=family_of(run.teacher.get("model"))) if run.teacher else None,
            "probe_context": (run.summary or {}).get("probe_context"),
            "stages": {s: run.stages.get(s, False) for s in STAGES},
            "bars": bars, "kind_bars": kind_bars(bars),
            "probe_figures": probe_figures(run), "effects": student_effects(run),
            "diversity": diversity(run),
            "filter": filter_panel(run), "provenance": provenance(run, out_dir), "method": method_text(run),
            "notes": (run.summary or {}).get("notes")}


# the result files of the studies that run several transmission runs (`<stem>.{md,json,png}` in their folder)
STUDIES = ("shared_init", "distill_conditions", "specificity", "misalignment", "misalignment-judged")


def study_stem(path: Path) -> str | None:
    """The study a folder holds (its result's file stem), None for a pipeline run's folder."""
    return next((s for s in STUDIES if (path / f"{s}.md").is_file() and (path / f"{s}.json").is_file()), None)


def study_panel(path: Path, stem: str) -> dict:
    """A study's panel: its written result (Markdown) and its figure, as the study wrote them."""
    text = (path / f"{stem}.md").read_text(encoding="utf-8")
    png = path / f"{stem}.png"
    title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), path.name)
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("# "))
    return {"name": path.name, "path": str(path), "title": title, "markdown": body.strip(),
            "figure": base64.b64encode(png.read_bytes()).decode("ascii") if png.is_file() else None,
            "figure_file": png.name if png.is_file() else None}


def build_report(run_dirs: list[str | Path], out_dir: str | Path) -> dict:
    """The whole report as plain data (what `report.json` holds): pipeline runs and study folders."""
    if not run_dirs:
        raise TraitbenchError("report needs at least one run folder")
    studies = [(Path(p), study_stem(Path(p))) for p in run_dirs]
    runs = [load_run(p) for p, stem in studies if stem is None]
    studies = [(p, stem) for p, stem in studies if stem is not None]
    names = [r.name for r in runs] + [p.name for p, _ in studies]
    if len(set(names)) != len(names):
        names = [str(r.path) for r in runs] + [str(p) for p, _ in studies]
    out_dir = Path(out_dir)
    return {"title": "traitbench report — " + ", ".join(names),
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "runs": [_checked(r.path, run_report, r, out_dir) for r in runs],
            "studies": [study_panel(p, stem) for p, stem in studies],
            "heatmaps": _checked(", ".join(str(r.path) for r in runs), heatmaps, runs)}


def _checked(where, build, *args):
    """`build(*args)`; a run file whose inner fields are not what traitbench writes (a damaged or foreign
    summary.json / manifest.json) is a one-line error naming the run instead of a traceback."""
    try:
        return build(*args)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as e:
        raise TraitbenchError(f"{where}: unexpected content in summary.json or manifest.json "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); rerun the run's "
                              "stages or remove the damaged file") from None


def default_out_dir(run_dirs: list[str | Path]) -> Path:
    """A single run's report goes into its own folder; several runs' into `runs/report/`."""
    return Path(run_dirs[0]) if len(run_dirs) == 1 else Path("runs") / "report"


def write_report(run_dirs: list[str | Path], out_dir: str | Path | None = None) -> dict[str, Path]:
    """Build and write report.json, report.md and the self-contained report.html; returns their paths."""
    out_dir = Path(out_dir) if out_dir else default_out_dir(run_dirs)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = json_safe(build_report(run_dirs, out_dir))
    paths = {n: out_dir / f"report.{n}" for n in ("json", "md", "html")}
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["md"], report_markdown(report))
    atomic_write_text(paths["html"], report_html(report))
    return paths
