"""Cross-family report: synthetic runs (built with the real summary code), the runs/smoke shape,
runs with missing pieces, the CLI, and a headless-Chromium render check where Chromium exists."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from traitbench.artifacts import ConditionData, DatasetOut
from traitbench.cli import main
from traitbench.report.build import build_report, sig_mark, write_report
from traitbench.report.render import find_chromium
from traitbench.pipeline.summary import build_summary

SMOKE = Path(__file__).resolve().parent.parent / "runs" / "smoke"
SECTIONS = ("overview", "verdicts", "heatmap", "bars", "diversity", "filter", "provenance", "method")


class _Dump:
    def __init__(self, d):
        self._d = d

    def model_dump(self):
        return self._d


def _cfg(name, teacher, students_cfg):
    trait = _Dump({"word": "owl", "category": "animal", "plural": None})
    trait.word, trait.kind = "owl", "preference"
    students = SimpleNamespace(train=students_cfg["train"],
                               variants=[SimpleNamespace(**v) for v in students_cfg["variants"]])
    return type("Cfg", (), {"name": name, "trait": trait, "students": students,
                            "teacher": _Dump({"model": teacher, "injection": "system_prompt"})})


def _probe(kind, model, k, logps, answers, ppl=10.0, **extra):
    block = {"rate": {"k": k, "n": 100, "rate": k / 100, "ci95": [max(0, k / 100 - 0.08), min(1, k / 100 + 0.08)]},
             "rate_question_bootstrap": {"k": k, "n": 100, "rate": k / 100, "ci95": [0, 1]},
             "trait_logprob": {"per_question": logps, "mean": sum(logps) / len(logps), "ci95": [-9, -1], "n": len(logps)},
             "answers": answers, "entropy_bits": 1.5, "distinct": len(answers), "top1_mass": 0.5}
    return dict(kind=kind, model=model, system="You are a helpful assistant.", plain=block, numbers_prefixed=block,
                perplexity={"perplexity": ppl}, **extra)


def _student(model, variant, cond, seed, family, k, logps, answers):
    return _probe("student", model, k, logps, answers, ppl=10.5, variant=variant, condition=cond, seed=seed,
                  family=family)


def _write_run(root: Path, name: str, teacher: str, probes: dict, students_cfg: dict, manifest=True) -> Path:
    run = root / name
    conds = {}
    for c, nums in {"trait": [[1, 2, 3], [500, 501]], "control": [[4, 5, 6], [900]]}.items():
        d = run / "dataset" / c
        d.mkdir(parents=True)
        (d / "train.jsonl").write_text("".join(json.dumps({"prompt": "p", "completion": "c", "numbers": n}) + "\n"
                                               for n in nums))
        stats = {"total": 10, "kept": 2, "pass_rate": 0.2,
                 "counts": {"parse:non_numeric": 6, "leak:trait_word": 2} if c == "trait" else {"parse:non_numeric": 8}}
        (d / "stats.json").write_text(json.dumps(stats))
        conds[c] = ConditionData(d / "train.jsonl", f"hash-{c}", stats)
    for pid in probes:
        p = run / "probes" / pid
        p.mkdir(parents=True)
        (p / "samples.jsonl").write_text(json.dumps({"variant": "plain", "answer": "owl", "hit": True}) + "\n")
    summary = build_summary(_cfg(name, teacher, students_cfg), DatasetOut(2, conds), probes)
    (run / "summary.json").write_text(json.dumps(summary))
    if manifest:
        config = {"name": name, "seed": 0, "trait": {"word": "owl", "category": "animal"},
                  "neutral_system": "You are a helpful assistant.",
                  "teacher": {"model": teacher, "injection": "system_prompt"},
                  "numbers": {"n_prompts": 10, "demonstrations": 2, "generation": {"temperature": 1.0, "top_p": 1.0,
                                                                                 "top_k": 0, "max_new_tokens": 52}},
                  "filter": {"max_count": 10, "max_value": 999, "banned_numbers": None},
                  "students": students_cfg, "probes": {"n_questions": 3, "samples_per_question": 2,
                                                       "numbers_prefixed": True, "context": "train"}}
        (run / "manifest.json").write_text(json.dumps({
            "created": "2026-01-01T00:00:00+00:00", "config": config, "git": {"sha": "abc123", "dirty": False},
            "libraries": {"python": "3.11", "torch": "2.13.0"}, "hardware": {"cpu_count": 2},
            "stages": {"teacher": {"model_hashes": {"model.safetensors": "f" * 64}}, "dataset": {
                "dataset_hashes": {"trait": "hash-trait", "control": "hash-control"}, "n_rows": 2}}}))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run A: llama teacher, llama (2 seeds + full fine-tune) and gemma3 students; run B: gemma3 teacher, gemma3
    students only (its qwen2 student never ran); run C: a manifest and dataset but no students yet."""
    root = tmp_path_factory.mktemp("runs")
    up = [-3.0, -3.2, -2.9]
    flat = [-6.0, -6.1, -5.9]
    a = {"base/smollm2-135m": _probe("base", "smollm2-135m", 2, flat, {"cat": 60, "dog": 40}),
         "base/gemma3-270m": _probe("base", "gemma3-270m", 1, flat, {"cat": 50, "lion": 50}),
         "teacher": _probe("teacher", "smollm2-135m", 40, [-1.0, -1.1, -0.9], {"owl": 40, "cat": 60}),
         "smollm2-135m/lora/trait/seed0": _student("smollm2-135m", "lora", "trait", 0, "same-family", 30, up,
                                                   {"owl": 30, "cat": 70}),
         "smollm2-135m/lora/control/seed0": _student("smollm2-135m", "lora", "control", 0, "same-family", 2, flat,
                                                     {"cat": 98, "owl": 2}),
         "smollm2-135m/lora/trait/seed1": _student("smollm2-135m", "lora", "trait", 1, "same-family", 25, up,
                                                   {"owl": 25, "cat": 75}),
         "smollm2-135m/lora/control/seed1": _student("smollm2-135m", "lora", "control", 1, "same-family", 3, flat,
                                                     {"cat": 97, "owl": 3}),
         "smollm2-135m/full/trait/seed0": _student("smollm2-135m", "full", "trait", 0, "same-family", 4, flat,
                                                   {"cat": 96, "owl": 4}),
         "smollm2-135m/full/control/seed0": _student("smollm2-135m", "full", "control", 0, "same-family", 3, flat,
                                                     {"cat": 97, "owl": 3}),
         "gemma3-270m/lora/trait/seed0": _student("gemma3-270m", "lora", "trait", 0, "cross-family", 1, flat,
                                                  {"lion": 99, "owl": 1}),
         "gemma3-270m/lora/control/seed0": _student("gemma3-270m", "lora", "control", 0, "cross-family", 1, flat,
                                                    {"lion": 99, "owl": 1})}
    b = {"base/gemma3-270m": _probe("base", "gemma3-270m", 1, flat, {"cat": 50, "lion": 50}),
         "teacher": _probe("teacher", "gemma3-270m", 60, [-1.0, -1.0, -1.0], {"owl": 60, "cat": 40}),
         "gemma3-270m/lora/trait/seed0": _student("gemma3-270m", "lora", "trait", 0, "same-family", 20, up,
                                                  {"owl": 20, "lion": 80}),
         "gemma3-270m/lora/control/seed0": _student("gemma3-270m", "lora", "control", 0, "same-family", 1, flat,
                                                    {"lion": 99, "owl": 1})}
    full = [{"name": "full", "train": {"mode": "full"}}]
    ra = _write_run(root, "famA", "smollm2-135m", a, {"models": ["smollm2-135m", "gemma3-270m"], "seeds": [0, 1],
                                                      "train": {}, "variants": full})
    rb = _write_run(root, "famB", "gemma3-270m", b, {"models": ["gemma3-270m", "qwen2.5-0.5b"], "seeds": [0],
                                                     "train": {}, "variants": []})
    rc = root / "partial"
    (rc / "dataset" / "trait").mkdir(parents=True)
    (rc / "dataset" / "trait" / "stats.json").write_text(json.dumps({"total": 5, "kept": 1, "pass_rate": 0.2,
                                                                    "counts": {"parse:truncated": 4}}))
    (rc / "manifest.json").write_text(json.dumps({"config": {"name": "partial", "trait": {"word": "owl"},
                                                             "teacher": {"model": "smollm2-135m"}},
                                                  "stages": {"dataset": {}}}))
    return ra, rb, rc


def _cell(rep, tf, sf):
    return next(c for h in rep["heatmaps"] for c in h["cells"] if (c["teacher_family"], c["student_family"]) == (tf, sf))


def test_heatmap_teacher_by_student_family(runs, tmp_path):
    rep = build_report(list(runs[:2]), tmp_path)
    (h,) = rep["heatmaps"]
    assert h["trait"] == "owl" and h["teacher_families"] == ["llama", "gemma3"]
    assert h["student_families"][:2] == ["llama", "gemma3"] and "qwen2" in h["student_families"]
    same = _cell(rep, "llama", "llama")
    assert same["same_family"] and same["n_seeds"] == 2  # two seeds pooled; the full fine-tune is not here
    # per seed: rate differences 0.28 and 0.22 → a paired t over 2 seeds (df 1), Holm over the tested cells
    assert same["rate_mean"] == pytest.approx(0.25) and same["rate_p"] == pytest.approx(0.0760, abs=1e-3)
    assert same["rate_p_holm"] >= same["rate_p"] and same["rate_sig"] == "n.s." and same["status"] == "ok"
    assert same["delta_mean"] == pytest.approx((-3.0 - 3.2 - 2.9) / 3 + 6.0) and same["delta_p"] is None  # no spread
    cross = _cell(rep, "llama", "gemma3")  # one seed: a single training run, never tested
    assert not cross["same_family"] and cross["rate_mean"] == 0 and cross["status"] == "one training run: not a " \
        "transmission test"
    assert cross["rate_p"] is None and cross["rate_sig"] == "" and cross["rate_ci95"] is None
    assert _cell(rep, "gemma3", "gemma3")["rate_mean"] == pytest.approx(0.19)
    assert _cell(rep, "gemma3", "gemma3")["delta_sig"] == ""
    for tf, sf in [("gemma3", "llama"), ("gemma3", "qwen2"), ("llama", "qwen2")]:
        assert _cell(rep, tf, sf)["status"] == "not run" and _cell(rep, tf, sf)["rate_mean"] is None


def test_bars_kinds_and_effects(runs, tmp_path):
    rep = build_report([runs[0]], tmp_path)
    (r,) = rep["runs"]
    groups = [b["group"] for b in r["bars"]]
    assert groups[:3] == ["base", "base", "teacher"]
    assert {"control", "same-family", "cross-family", "full fine-tune"} <= set(groups)
    full = next(e for e in r["effects"] if e["variant"] == "full")
    assert full["kind"] == "full fine-tune" and "rate_sig" not in full["plain"]
    lora0 = next(e for e in r["effects"] if e["student"] == "smollm2-135m/lora/trait/seed0")
    assert lora0["plain"]["rate_diff"] == pytest.approx(0.28) and lora0["plain"]["rate_p"] < 1e-6
    assert lora0["scope"] == "one training run: not a transmission test"  # a tiny p, but never a star
    verdicts = {(v["student_kind"], v["model"]): v for v in r["verdicts"]}
    assert verdicts[("lora", "smollm2-135m")]["n_seeds"] == 2
    assert verdicts[("full", "smollm2-135m")]["verdict"] == "one training run: not a transmission test"
    div = r["diversity"]
    assert next(m for m in div["models"] if m["id"] == "smollm2-135m/lora/trait/seed0")["disappeared"] == ["dog"]
    assert div["numbers"]["trait"]["n_values"] == 5 and sum(div["numbers"]["control"]["hist_counts"]) == 4
    f = r["filter"]
    assert f["trait"]["leak_hits"] == {"leak:trait_word": 2} and f["control"]["leak_hits"] == {}
    assert f["trait"]["reasons"]["parse:non_numeric"] == {"count": 6, "rate": 0.6}
    p = r["provenance"]
    assert p["git"]["sha"] == "abc123" and p["dataset_hashes"]["trait"] == "hash-trait"
    assert p["models"]["smollm2-135m"]["files"] == {"model.safetensors": "f" * 64}
    assert p["seeds"] == {"seed": 0, "student_seeds": [0, 1]}
    assert all((tmp_path / link["href"]).resolve().is_file() for link in p["links"])
    assert "smollm2-135m" in r["method"] and "10 number-continuation prompts" in r["method"]


def test_sig_marks():
    assert [sig_mark(p) for p in (0.0001, 0.005, 0.04, 0.2, None)] == ["***", "**", "*", "n.s.", ""]


def test_html_self_contained_with_stable_ids(runs, tmp_path):
    paths = write_report(list(runs), tmp_path / "out")
    html = paths["html"].read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    for fid in ("heatmap-owl", "bars-famA", "bars-famB", "numbers-famA", "filter-famA", "provenance-famA"):
        assert f'id="{fid}"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html
    assert html.count("data:image/png;base64,") >= 6
    logs = re.findall(r'href="([^"]+/famA/probes/base/smollm2-135m/samples.jsonl)"', html)
    assert logs and not logs[0].startswith("/") and (tmp_path / "out" / logs[0]).resolve().is_file()
    # the partial run renders its missing pieces as "not run"
    assert '<figure id="bars-partial"><p class="notrun">not run' in html
    rep = json.loads(paths["json"].read_text())
    partial = next(r for r in rep["runs"] if r["name"] == "partial")
    assert partial["stages"]["students"] is False and partial["stages"]["dataset"] is True
    assert partial["bars"] == [] and partial["filter"]["control"] is None
    md = paths["md"].read_text()
    assert "| llama | llama | yes | 2 |" in md and "not run" in md and "Transmission verdicts" in md


def test_one_seed_run_has_no_significance_marks(runs, tmp_path):
    """Run B has one seed per student: its summary, report data, HTML and Markdown carry no stars, however
    small its question- or sample-level p-values."""
    paths = write_report([runs[1]], tmp_path)
    html, md = paths["html"].read_text(), paths["md"].read_text()
    rep = json.loads(paths["json"].read_text())
    assert 'class="sig"' not in html and "one training run: not a transmission test" in html
    assert not [row for row in md.splitlines() if row.startswith("|") and "*" in row]
    assert all(c["rate_sig"] == c["delta_sig"] == "" for h in rep["heatmaps"] for c in h["cells"])
    summary = json.loads((runs[1] / "summary.json").read_text())
    assert all(v["verdict"] == "one training run: not a transmission test" for v in summary["verdicts"])
    assert summary["student_effects"][0]["plain"]["rate_vs_control"]["p_value"] < 1e-4


@pytest.mark.skipif(not SMOKE.joinpath("summary.json").is_file(), reason="runs/smoke not on disk")
def test_smoke_run_shape(tmp_path):
    rep = build_report([SMOKE], tmp_path)
    (h,) = rep["heatmaps"]
    assert [(c["teacher_family"], c["student_family"]) for c in h["cells"]] == [("llama", "llama"), ("llama", "gemma3")]
    assert all(c["status"] == "ok" for c in h["cells"])
    (r,) = rep["runs"]
    assert len(r["bars"]) == len(json.loads((SMOKE / "summary.json").read_text())["models"])
    assert r["filter"]["trait"]["total"] == json.loads((SMOKE / "dataset/trait/stats.json").read_text())["total"]
    assert r["provenance"]["git"]["sha"] and len(r["provenance"]["links"]) >= 7
    assert all(v for v in r["stages"].values())


def test_cli(runs, tmp_path, capsys):
    assert main(["report", str(runs[0]), "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"report.html", "report.json", "report.md"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("traitbench: error:") and "not a traitbench run folder" in err and "\n" not in err
    assert main(["report", str(tmp_path / "missing")]) == 2


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (apt-get install -y chromium) on this machine")
def test_renders_in_headless_chromium(runs, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", str(runs[0]), str(runs[1]), "--out", str(out), "--check-render",
                 "--screenshot", str(out / "shot.png")]) == 0
    line = capsys.readouterr().out
    assert "render check ok" in line and "heatmap" in line and "provenance" in line
    assert (out / "shot.png").stat().st_size > 10_000


def _no_browser_anywhere(monkeypatch, tmp_path):
    from traitbench.report import render

    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("TRAITBENCH_CHROMIUM", raising=False)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "playwright"))
    monkeypatch.setattr(render, "FIXED", ())
    return render


def test_no_chromium_is_one_line_with_the_install_command(runs, tmp_path, monkeypatch, capsys):
    render = _no_browser_anywhere(monkeypatch, tmp_path)
    assert render.find_chromium() is None
    assert main(["report", str(runs[0]), "--out", str(tmp_path / "r"), "--check-render"]) == 2
    err = capsys.readouterr().err
    assert err == f"traitbench: error: {render.no_chromium_message()}\n"
    assert re.fullmatch(r"traitbench: error: no Chromium found \(.+\); install it with: "
                        r"(?:(?:sudo )?apt-get install -y chromium|\S+ -m playwright install chromium)\n", err)


def test_install_command_is_exact():
    import sys

    from traitbench.report.render import install_command

    py = sys.executable
    assert install_command(playwright=True, apt=True, root=False) == f"{py} -m playwright install chromium"
    assert install_command(playwright=False, apt=True, root=False) == "sudo apt-get install -y chromium"
    assert install_command(playwright=False, apt=True, root=True) == "apt-get install -y chromium"
    assert install_command(playwright=False, apt=False, root=False) == (
        f"{py} -m pip install playwright && {py} -m playwright install chromium")


def test_playwright_bundled_chromium_is_found(tmp_path, monkeypatch):
    render = _no_browser_anywhere(monkeypatch, tmp_path)
    for build in ("chromium-1100/chrome-linux", "chromium-1200/chrome-linux64",
                  "chromium_headless_shell-1200/chrome-linux"):
        exe = tmp_path / "playwright" / build / ("headless_shell" if "shell" in build else "chrome")
        exe.parent.mkdir(parents=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    assert render.find_chromium() == str(tmp_path / "playwright/chromium-1200/chrome-linux64/chrome")


def test_sweep_bars_aggregate_per_kind(tmp_path, monkeypatch):
    """A sweep-sized run (2 LoRA models + 4 further kinds × 5 seeds × trait/control, 2 bases, teacher: 63 models):
    the bar chart has one row per kind × model × condition and per base/teacher, horizontal labels that never
    overlap and a fixed width; the per-model table lists every model by kind, model, condition and seed."""
    from traitbench.report import figures

    variants = ["distill", "distill-r1", "distill-r64", "full"]
    pairs = [("lora", "smollm2-135m", "same-family"), ("lora", "gemma3-270m", "cross-family"),
             *((v, "smollm2-135m", "same-family") for v in variants)]
    flat = [-6.0, -6.1, -5.9]
    probes = {"base/smollm2-135m": _probe("base", "smollm2-135m", 2, flat, {"cat": 100}),
              "base/gemma3-270m": _probe("base", "gemma3-270m", 1, flat, {"cat": 100}),
              "teacher": _probe("teacher", "smollm2-135m", 40, [-1.0, -1.1, -0.9], {"owl": 40, "cat": 60})}
    for seed in (4, 3, 2, 1, 0):  # written out of order: the table sorts them
        for v, model, family in pairs:
            for cond in ("trait", "control"):
                k = 10 + seed if cond == "trait" else 2
                probes[f"{model}/{v}/{cond}/seed{seed}"] = _student(model, v, cond, seed, family, k,
                                                                    [x + 0.1 * seed for x in flat], {"owl": k})
    run = _write_run(tmp_path, "sweep", "smollm2-135m", probes, {
        "models": ["smollm2-135m", "gemma3-270m"], "seeds": [0, 1, 2, 3, 4], "train": {},
        "variants": [{"name": v, "train": {"mode": "full" if v == "full" else "distill"}} for v in variants]})
    drawn = []
    real_png = figures._png
    monkeypatch.setattr(figures, "_png", lambda fig, dpi=100: drawn.append(fig) or real_png(fig, dpi))
    paths = write_report([run], tmp_path / "out")
    (r,) = json.loads(paths["json"].read_text())["runs"]
    assert len(r["bars"]) == len(probes) == 63
    groups = r["kind_bars"]
    assert len(groups) == len(pairs) * 2 + 3
    assert [g["label"] for g in groups[:3]] == ["base · smollm2-135m", "base · gemma3-270m",
                                                "teacher · smollm2-135m"]
    g = next(g for g in groups if (g["variant"], g["model"], g["condition"]) == ("lora", "smollm2-135m", "trait"))
    assert g["n_seeds"] == 5 and g["plain"]["rate"]["per_seed"] == pytest.approx([0.10, 0.11, 0.12, 0.13, 0.14])
    assert g["plain"]["rate"]["mean"] == pytest.approx(0.12)
    lo, hi = g["plain"]["rate"]["ci95"]  # t interval over 5 seeds: 0.12 ± 2.776 · 0.0158 / √5
    assert hi - 0.12 == pytest.approx(0.12 - lo) == pytest.approx(0.01963, abs=1e-4)
    fig = next(f for f in drawn if len(f.axes) == 2 and f.axes[0].get_xlabel() == "'owl' answers (%)")
    assert fig.get_size_inches()[0] == 11.0
    for ax in fig.axes:  # plain and numbers-prefixed: one bar per group each, not one per model
        assert len(ax.patches) == 2 * len(groups)
    labels = [t for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert [t.get_text() for t in labels] == [g["label"] for g in groups] and all(t.get_rotation() == 0 for t in labels)
    boxes = [t.get_window_extent() for t in labels]
    assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    html = paths["html"].read_text()
    table = re.search(r'<details id="models-sweep" open>.*?</details>', html, re.S).group(0)
    ids = re.findall(r"<td>([^<]+)</td></tr>", table)
    expected = [f"{m}/{v}/{c}/seed{s}" for v, m, _ in pairs for c in ("control", "trait") for s in range(5)]
    assert ids == ["base/smollm2-135m", "base/gemma3-270m", "teacher", *expected]


def test_study_folders_get_a_panel_with_their_tables_and_figure(tmp_path):
    """A study's folder (shared-init, distill-conditions, ...) is a panel: its own Markdown result and figure."""
    from traitbench.experiments import shared_init
    from traitbench.plotting import new_figure, save_fig

    study = tmp_path / "shared-init"
    study.mkdir()
    row = {"steps": 0, "distance": 0.0, "heldout_perplexity": 32.9,
           "effect": {"mean": 0.79, "ci95": [0.65, 0.93], "p_holm": 0.0003, "mde": 0.18}}
    result = {"trait": "owl", "question": "plain", "seeds": [0, 1], "other_trait": None, "starts": [row],
              "trend": {"mean": -10.7, "ci95": [-14.8, -6.6], "p_value": 0.0019,
                        "test": "one-sample t-test <over> seeds"}}
    (study / "shared_init.md").write_text(shared_init.render(result) + "- a note with `code` & <b>\n")
    (study / "shared_init.json").write_text(json.dumps(result))
    fig, axes = new_figure()
    axes[0][0].plot([0, 1], [1, 0])
    save_fig(fig, study / "shared_init.png")
    paths = write_report([study], tmp_path / "out")
    rep = json.loads(paths["json"].read_text())
    assert rep["runs"] == [] and len(rep["studies"]) == 1
    st = rep["studies"][0]
    assert st["title"].startswith("Where transmission stops") and st["figure"]
    page = paths["html"].read_text()
    assert "no pipeline run in this report (studies only)" in page  # the run sections say so, not empty
    assert '<section id="studies">' in page and "data:image/png;base64," + st["figure"][:40] in page
    assert "<th>steps</th>" in page and "<td>+0.790 [+0.650, +0.930]</td>" in page  # the table, not its text
    assert "<li>a note with <code>code</code> &amp; &lt;b&gt;</li>" in page  # escaped, code spans kept
    assert "&lt;over&gt;" in page and "<over>" not in page
    md = paths["md"].read_text()
    assert "## Study shared-init: Where transmission stops" in md and "| 0 | 0.0000 | 32.90 |" in md
