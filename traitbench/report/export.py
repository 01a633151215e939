"""Export a run's probe results for other tools.

- `inspect`: one inspect_ai eval log (JSON, log format version 2) per probed model and question variant,
  built from `probes/<id>/samples.jsonl` and `probe.json`: every sampled answer is a sample (id = variant
  and question, epoch = the answer's number for that question), scored 1/0 for mentioning the trait.
  Files are named `<timestamp>_<task>_<id>.json` so `inspect view --log-dir DIR` lists them.
- `lm-eval`: one lm-evaluation-harness-style `results` JSON per probed model: tasks
  `traitbench_<trait>_preference[_numbers_prefixed]` with `metric,none` / `metric_stderr,none` keys, and one
  task `traitbench_<probe>` per registered probe with the model's figures in summary.json (none without it).

Neither format needs inspect_ai or lm-eval installed to be written.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from traitbench import __version__
from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, json_safe, read_json, read_jsonl
from traitbench.layout import RunLayout

VARIANTS = ("plain", "numbers_prefixed")
FORMATS = ("inspect", "lm-eval")


def _probes(run: Path) -> list[tuple[str, dict, Path]]:
    """(probe id, probe.json, samples.jsonl) of every finished probe in the run."""
    out, probes = [], RunLayout(run).probes
    for pj in sorted(probes.glob("**/probe.json")):
        samples = pj.with_name("samples.jsonl")
        if samples.is_file():
            out.append((pj.parent.relative_to(probes).as_posix(), read_json(pj), samples))
    if not out:
        raise TraitbenchError(f"{run}: no probe results (probes/*/probe.json with samples.jsonl); run the probes first")
    return out


def _created(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")


def _id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:22]


def _task(trait: str, variant: str, sep: str = "-") -> str:
    word = re.sub(r"[^A-Za-z0-9]+", sep, trait).strip(sep) or "trait"
    return sep.join(["traitbench", word, "preference"] + (["numbers", "prefixed"] if variant != "plain" else []))


def _mean_stderr(values: list[float]) -> tuple[float, float]:
    x = np.asarray(values, float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else float("nan")


def _value(figure):
    """A figure's number (an estimate's value)."""
    return figure.get("value") if isinstance(figure, dict) else figure


def _stderr(figure):
    """An estimate's standard error as its 95% CI's half-width / 1.96; "N/A" for a bare number."""
    ci = figure.get("ci95") if isinstance(figure, dict) else None
    if not ci or None in ci or not all(math.isfinite(c) for c in ci):
        return "N/A"
    return (ci[1] - ci[0]) / (2 * 1.959964)


def inspect_log(run: Path, pid: str, probe: dict, rows: list[dict], variant: str, created: str) -> dict:
    """An inspect_ai EvalLog (as a dict) for one probed model and one question variant."""
    trait, system = probe.get("trait", "trait"), probe.get("system")
    model = f"traitbench/{pid}"
    samples = []
    epochs: dict[int, int] = {}
    for r in rows:
        q = int(r["question_idx"])
        epochs[q] = epochs.get(q, 0) + 1
        hit = 1.0 if r.get("hit") else 0.0
        messages = ([{"role": "system", "content": system, "source": "input"}] if system else []) + [
            {"role": "user", "content": r["question"], "source": "input"},
            {"role": "assistant", "content": r["answer"], "source": "generate", "model": model}]
        samples.append({
            "id": f"{variant}-q{q}", "epoch": epochs[q], "input": r["question"], "target": trait,
            "messages": messages,
            "output": {"model": model, "choices": [{"message": messages[-1], "stop_reason": "stop"}],
                       "completion": r["answer"]},
            "scores": {"trait_mention": {"value": hit, "answer": r.get("normalized"),
                                         "explanation": f"answer {'mentions' if hit else 'does not mention'} '{trait}'"}},
            "metadata": {"variant": variant, "question_idx": q, "normalized": r.get("normalized")},
            "store": {}, "events": [], "model_usage": {}, "attachments": {}})
    hits = [s["scores"]["trait_mention"]["value"] for s in samples]
    acc, se = _mean_stderr(hits) if hits else (float("nan"), float("nan"))
    agg = probe.get(variant) or {}
    task = _task(trait, variant)
    metrics = {"accuracy": {"name": "accuracy", "value": acc}, "stderr": {"name": "stderr", "value": se}}
    return {
        "version": 2, "status": "success",
        "eval": {"eval_id": _id(str(run), pid, variant, "eval"), "run_id": _id(str(run), "run"), "created": created,
                 "task": task, "task_id": _id(str(run), pid, variant), "task_version": 0,
                 "dataset": {"name": f"traitbench favourite-{probe.get('category', 'animal')} questions ({variant})",
                             "samples": len({s["id"] for s in samples})},
                 "model": model, "model_generate_config": {"temperature": 1.0, "top_p": 1.0},
                 "config": {"epochs": max(epochs.values()) if epochs else 1},
                 "packages": {"traitbench": __version__},
                 "metadata": {"run": str(run), "probe_id": pid, "system": system, "trait": trait,
                              "kind": probe.get("kind")}},
        "plan": {"name": "plan", "steps": [{"solver": "generate", "params": {}}], "config": {}},
        "results": {"total_samples": len(samples), "completed_samples": len(samples),
                    "scores": [{"name": "trait_mention", "scorer": "trait_mention", "params": {},
                                "metrics": {k: v for k, v in metrics.items() if math.isfinite(v["value"])}}],
                    "metadata": {"rate_wilson": agg.get("rate"),
                                 "rate_question_bootstrap": agg.get("rate_question_bootstrap"),
                                 "trait_logprob": {k: (agg.get("trait_logprob") or {}).get(k)
                                                   for k in ("mean", "ci95", "n")}}},
        "stats": {"started_at": created, "completed_at": created, "model_usage": {}},
        "samples": samples,
    }


def lm_eval_results(run: Path, pid: str, probe: dict, summary: dict | None, created: str) -> dict:
    """lm-evaluation-harness-like results for one probed model (`metric,none` and `metric_stderr,none`)."""
    trait = probe.get("trait", "trait")
    entry = ((summary or {}).get("models") or {}).get(pid) or {}
    results, configs, versions, n_samples, better = {}, {}, {}, {}, {}
    for v in VARIANTS:
        agg = probe.get(v)
        if not agg:
            continue
        task = _task(trait, v, "_")
        r = agg["rate"]
        p = r["k"] / r["n"] if r["n"] else float("nan")
        lp_mean, lp_se = _mean_stderr(agg["trait_logprob"]["per_question"])
        res = {"alias": task, "trait_rate,none": p,
               "trait_rate_stderr,none": math.sqrt(p * (1 - p) / r["n"]) if r["n"] else float("nan"),
               "trait_logprob,none": lp_mean, "trait_logprob_stderr,none": lp_se,
               "answer_entropy_bits,none": agg.get("entropy_bits"), "answer_entropy_bits_stderr,none": "N/A"}
        d = (entry.get(v) or {}).get("delta_logprob_vs_base")
        if d and d.get("delta") is not None and d.get("ci95") and None not in d["ci95"]:
            res["delta_logprob_vs_base,none"] = d["delta"]
            res["delta_logprob_vs_base_stderr,none"] = (d["ci95"][1] - d["ci95"][0]) / (2 * 1.959964)
        results[task] = {k: (None if isinstance(x, float) and not math.isfinite(x) else x) for k, x in res.items()}
        configs[task] = {"task": task, "output_type": "generate_until", "num_fewshot": 0,
                         "generation_kwargs": {"temperature": 1.0, "top_p": 1.0, "do_sample": True},
                         "metadata": {"trait": trait, "category": probe.get("category"), "system": probe.get("system")}}
        versions[task] = 1
        n_samples[task] = {"original": r["n"], "effective": r["n"]}
        better[task] = {"trait_rate": True, "trait_logprob": True, "answer_entropy_bits": True}
    for name, figures in (entry.get("figures") or {}).items():  # one task per registered probe
        task = f"traitbench_{name}"
        results[task] = {"alias": task, **{f"{k},none": _value(v) for k, v in figures.items()},
                         **{f"{k}_stderr,none": _stderr(v) for k, v in figures.items()}}
        configs[task] = {"task": task, "output_type": "generate_until", "num_fewshot": 0,
                         "metadata": {"probe": name, "trait": trait, "system": probe.get("system")}}
        versions[task] = 1
    return {"results": results, "groups": {}, "configs": configs, "versions": versions, "n-shot": {t: 0 for t in results},
            "higher_is_better": better, "n-samples": n_samples,
            "config": {"model": "traitbench", "model_args": f"run={run},probe={pid}", "batch_size": None,
                       "device": None, "limit": None, "bootstrap_iters": 0},
            "model_name": pid, "date": created, "traitbench_version": __version__}


def export_run(run: str | Path, fmt: str, out: str | Path | None = None) -> list[Path]:
    """Write the export files for `run` in format `fmt`; returns their paths."""
    if fmt not in FORMATS:
        raise TraitbenchError(f"unknown export format {fmt!r} (choose {', '.join(FORMATS)})")
    run = Path(run)
    if not run.is_dir():
        raise TraitbenchError(f"run folder not found: {run}")
    out = Path(out) if out else run / "export" / fmt
    summary_path = RunLayout(run).summary_json
    summary = read_json(summary_path) if summary_path.is_file() else None
    files = []
    for pid, probe, samples_path in _probes(run):
        try:
            files += _export_files(run, fmt, pid, probe, samples_path, summary)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as e:
            raise TraitbenchError(f"{samples_path.parent}: unexpected content in probe.json or samples.jsonl "
                                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); rerun the "
                                  "probes") from None
    if not files:
        raise TraitbenchError(f"{run}: no probe answers to export (no {' or '.join(VARIANTS)} rows in samples.jsonl)")
    written = []
    for name, data in files:
        atomic_write_json(out / name, data)
        written.append(out / name)
    return written


def _export_files(run: Path, fmt: str, pid: str, probe: dict, samples_path: Path, summary: dict | None
                  ) -> list[tuple[str, dict]]:
    """(file name, content) of one probed model's export files."""
    created = _created(samples_path)
    if fmt == "lm-eval":
        slug = re.sub(r"[^A-Za-z0-9]+", "-", pid).strip("-")
        return [(f"{slug}.json", json_safe(lm_eval_results(run, pid, probe, summary, created)))]
    rows = read_jsonl(samples_path)
    out = []
    for v in VARIANTS:
        vrows = [r for r in rows if r.get("variant") == v]
        if vrows:
            log = inspect_log(run, pid, probe, vrows, v, created)
            ts = created.replace(":", "-")
            out.append((f"{ts}_{log['eval']['task']}_{log['eval']['task_id']}.json", json_safe(log)))
    return out
