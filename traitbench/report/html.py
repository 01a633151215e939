"""Render the report data as one self-contained HTML file (plots as base64 PNG, inline CSS, no external
URL) and as Markdown. Stable element ids: `overview`, `verdicts`, `heatmap`, `bars`, `probe-figures`,
`diversity`, `filter`, `provenance`, `method` (sections) and `verdicts-<run>`, `dose-<run>`, `heatmap-<trait>`,
`bars-<run>`, `probe-figures-<run>`, … (figures)."""

from __future__ import annotations

import html
import json
import re

import yaml

from traitbench.report import figures
from traitbench.report.data import NOT_RUN, STAGES
from traitbench.pipeline.verdicts import ONE_RUN, sig_mark

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1300px;color:#222;padding:0 16px}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:2em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}.notrun{color:#999;font-style:italic}
.sig{color:#b71c1c;font-weight:bold}.leak{color:#b71c1c;font-weight:bold}code,pre{font-size:.85em}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:420px}.mono{font-family:monospace;font-size:.8em;word-break:break-all}
figure{margin:.8em 0}figcaption{font-size:.85em;color:#555}
"""

# Marks <body data-images="ok|broken"> once loaded, so a headless check can tell that every plot decoded.
CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  document.body.setAttribute('data-images', bad ? 'broken' : 'ok');
  document.body.setAttribute('data-image-count', String(imgs.length));
});
</script>"""


def slug(text: str) -> str:
    """An element-id-safe version of a run or trait name."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def e(x) -> str:
    return html.escape("" if x is None else str(x))


def _notrun(what: str = NOT_RUN) -> str:
    return f'<p class="notrun">{e(what)}</p>'


def fmt_rate(r: float | None, ci=None, k=None, n=None) -> str:
    if r is None:
        return NOT_RUN
    s = (f"{k}/{n} = " if k is not None and n is not None else "") + f"{100 * r:.1f}%"
    if ci and all(isinstance(c, (int, float)) for c in ci):
        s += f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return s


def fmt_signed(v: float | None, ci=None, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    if v is None:
        return NOT_RUN
    s = f"{scale * v:+.{digits}f}{unit}"
    if ci and all(isinstance(c, (int, float)) for c in ci):
        s += f" [{scale * ci[0]:+.{digits}f}, {scale * ci[1]:+.{digits}f}]"
    return s


def fmt_p(p: float | None, mark: str = "") -> str:
    return "" if p is None else f"p={p:.3g} {mark}".strip()


def _table(headers: list[str], rows: list[list], raw: bool = False) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(b64: str | None, alt: str, fid: str, caption: str) -> str:
    if not b64:
        return f'<figure id="{fid}">{_notrun(f"{NOT_RUN}: {alt}")}</figure>'
    return (f'<figure id="{fid}"><img alt="{e(alt)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{e(caption)}</figcaption></figure>")


# ------------------------------------------------------------------------------------------ sections
def _overview(rep: dict) -> str:
    rows = []
    for r in rep["runs"]:
        t, tr = r["teacher"] or {}, r["trait"] or {}
        stages = " ".join(f"{s}:{'✓' if r['stages'][s] else NOT_RUN}" for s in STAGES)
        rows.append([r["name"], tr.get("word", NOT_RUN), f"{t.get('model', NOT_RUN)} ({t.get('family', '?')})",
                     t.get("injection", ""), r["probe_context"] or "", stages])
    return ('<section id="overview"><h2>Runs</h2>'
            + _table(["run", "trait", "teacher (family)", "injection", "probe context", "stages"], rows) + "</section>")


def _seed_test(t: dict, scale: float = 1.0, digits: int = 3, unit: str = "") -> str:
    """A seed-level test as 'mean [CI], p, Holm p + mark' (HTML-escaped, the mark highlighted)."""
    text = e(fmt_signed(t.get("mean"), t.get("ci95"), scale, digits, unit))
    p = t.get("p_holm")
    if p is None:
        return text + (f" ({ONE_RUN})" if t.get("n_seeds", 0) < 2 else " (no variation)")
    mark = sig_mark(p)
    test = e(f"p={t['p_value']:.2g}, Holm p={p:.2g} {mark}")
    return f"{text}, " + (f'<span class="sig">{test}</span>' if "*" in mark else test)


def _verdict_rows(verdicts: list[dict]) -> list[list]:
    rows = []
    for v in verdicts:
        d, r = v["delta_logprob_vs_control"], v["rate_vs_control"]
        rows.append([e(v["student_kind"]), e(v["model"]), e(v["relation"]), e(v["n_seeds"]), _seed_test(d),
                     e(f"{d['mde']:.3f}" if d.get("mde") is not None else "—"),
                     _seed_test(r, 100, 1, " pts") + e(f" ({r.get('trait')} vs {r.get('control')})"),
                     f'<b>{e(v["verdict"])}</b>'])
    return rows


VERDICT_HEADERS = ["student kind", "model", "relation", "seeds", "Δlog P(trait) vs control, nats (95% CI)",
                   "MDE (nats)", "trait rate vs control (95% CI)", "verdict"]


def _verdicts(rep: dict) -> str:
    parts = ['<section id="verdicts"><h2>Transmission verdicts (seed-level)</h2>',
             "<p>Per training seed, the trait student minus its control student (same model, kind, seed and "
             "recipe, trained on the control teacher's numbers). Mean over seeds with a t interval; paired t-test "
             "over seeds, Holm-corrected across the run's Δlog P and rate tests; significance marks only after "
             "correction. MDE: the Δlog P effect found with 80% power at α = 0.05 given the seeds' spread. "
             "Plain question.</p>"]
    for r in rep["runs"]:
        sid = slug(r["name"])
        parts.append(f"<h3>{e(r['name'])}</h3>")
        if not r["verdicts"]:
            parts.append(f'<figure id="verdicts-{sid}">{_notrun(f"{NOT_RUN}: no probed students")}</figure>')
            continue
        parts.append(_table(VERDICT_HEADERS, _verdict_rows(r["verdicts"]), raw=True))
        if r.get("reading"):
            reading = _inline(r["reading"])  # `make specificity`
            parts.append(f'<p class="reading"><b>Reading.</b> {reading}</p>')
        parts.append(_img(figures.verdicts_png(r["verdicts"]), f"verdicts for {r['name']}", f"verdicts-{sid}",
                          "per-seed effects (dots) and their mean with 95% CI"))
        if r["dose_response"]:
            parts.append(_img(figures.dose_png(r["dose_response"]), f"dose-response for {r['name']}",
                              f"dose-{sid}", "effect after k training steps (checkpoints), mean over seeds"))
    return "".join(parts) + "</section>"


def _heatmap(rep: dict) -> str:
    parts = ['<section id="heatmap"><h2>Trait effect vs control: teacher family × student family</h2>',
             "<p>Default LoRA students. A cell pools its students' per-seed effects (trait student − control "
             "student of one seed) over seeds and runs: mean with a t interval and a paired t-test over seeds, "
             f"Holm-corrected across the cells; a cell with one seed is marked \"{e(ONE_RUN)}\" and gets no test. "
             "One colour scale per panel for every cell, with a minimum span. Diagonal (boxed) = same family as "
             "the teacher.</p>"]
    if not rep["heatmaps"]:
        parts.append(_notrun())
    spans = figures.heatmap_spans(rep["heatmaps"])
    for h in rep["heatmaps"]:
        fid = f"heatmap-{slug(h['trait'])}"
        parts.append(f"<h3>trait: {e(h['trait'])}</h3>")
        parts.append(_img(figures.heatmap_png(h, spans), f"heatmap for {h['trait']}", fid,
                          "teacher family (rows) × student family (columns)"))
        parts.append(_table(["teacher family", "student family", "same", "seeds", "rate diff (95% CI)",
                             "Δlog P diff (95% CI)"], _heat_rows(h), raw=True))
    return "".join(parts) + "</section>"


def _heat_rows(h: dict, html_out: bool = True) -> list[list]:
    rows = []
    for c in h["cells"]:
        cols = []
        for k, scale, digits, unit in (("rate", 100, 1, " pts"), ("delta", 1, 2, "")):
            text = fmt_signed(c[f"{k}_mean"], c[f"{k}_ci95"], scale, digits, unit)
            if c["n_seeds"] == 1:
                text += f" ({ONE_RUN})"
            elif c.get(f"{k}_p_holm") is not None:
                text += f", p={c[f'{k}_p']:.2g}, Holm p={c[f'{k}_p_holm']:.2g} {c[f'{k}_sig']}".rstrip()
            cols.append(e(text) if html_out else text)
        rows.append([c["teacher_family"], c["student_family"], "yes" if c["same_family"] else "no", c["n_seeds"],
                     *cols])
    return rows


MODEL_HEADERS = ["kind", "model", "condition", "seed", "relation", "trait rate (95% CI)", "Δlog P vs base (95% CI)",
                 "numbers-prefixed rate", "probe"]


def _model_rows(bars: list[dict]) -> list[list]:
    """The per-model table: one row per probed model, in `build.model_bars`' order (kind, model, condition, seed)."""
    rows = []
    for b in bars:
        p, q = b.get("plain") or {}, b.get("numbers_prefixed") or {}
        student = b["kind"] == "student"
        rows.append([b["variant"] if student else b["kind"], b["model"], b.get("condition") or "—",
                     b["seed"] if student else "—", b.get("relation") or "—",
                     fmt_rate(p.get("rate"), p.get("ci95"), p.get("k"), p.get("n")),
                     fmt_signed(p.get("delta_logprob_vs_base"), p.get("delta_ci95")),
                     fmt_rate(q.get("rate"), q.get("ci95"), q.get("k"), q.get("n")) if q else NOT_RUN, b["id"]])
    return rows


def _bars(rep: dict) -> str:
    parts = ['<section id="bars"><h2>Trait rates and Δlog P per student kind</h2>']
    if not rep["runs"]:
        parts.append(_notrun(f"{NOT_RUN}: no pipeline run in this report (studies only)"))
    for r in rep["runs"]:
        sid = slug(r["name"])
        word = (r["trait"] or {}).get("word", "?")
        parts.append(f'<h3>{e(r["name"])} — trait {e(word)}</h3>')
        if not r["bars"]:
            note = _notrun(f"{NOT_RUN}: no probed models (summary.json missing)")
            parts.append(f'<figure id="bars-{sid}">{note}</figure>')
            continue
        parts.append(_img(figures.bars_png(r.get("kind_bars") or [], word), f"bars for {r['name']}", f"bars-{sid}",
                          "one row per student kind × model × condition (mean over seeds, whiskers: 95% t interval "
                          "over seeds, dots: seeds) and per base model and teacher; plain question (solid) and "
                          "numbers-prefixed (hatched)"))
        parts.append(f'<details id="models-{sid}" open><summary>every probed model ({len(r["bars"])}), by kind, '
                     "model, condition and seed</summary>" + _table(MODEL_HEADERS, _model_rows(r["bars"])) +
                     "</details>")
        if r["effects"]:
            rows = []
            for x in r["effects"]:
                p = x.get("plain") or {}
                rows.append([e(x["student"]), e(x["kind"]), e(x["relation"]),
                             e(fmt_signed(p.get("rate_diff"), p.get("rate_ci95"), 100, 1, " pts")),
                             e(fmt_p(p.get("rate_p"))), e(fmt_signed(p.get("delta_logprob"), p.get("delta_ci95"))),
                             e(fmt_p(p.get("delta_p")))])
            parts.append(f"<p>Each trait student vs its control student (plain question; {e(ONE_RUN)}: the "
                         "p-values compare two trained models):</p>" + _table(
                ["student", "kind", "relation", "rate diff", "Fisher p", "Δlog P diff", "question-level p"], rows,
                raw=True))
        else:
            parts.append(_notrun(f"students vs control: {NOT_RUN}"))
    return "".join(parts) + "</section>"


def _figure_cell(v) -> str:
    """A number, or an estimate as "value [low, high] n=…"."""
    if isinstance(v, dict):
        if v["value"] is None:
            return f"{NOT_RUN} (n={v['n']})"
        ci = v["ci95"]
        bounds = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and None not in ci else ""
        return f"{v['value']:.4g}{bounds} n={v['n']}"
    return NOT_RUN if v is None else f"{v:.4g}"


def _probe_figures(rep: dict) -> str:
    parts = ['<section id="probe-figures"><h2>Probe figures</h2>',
             "<p>Each registered probe's headline figures per probed model (summary.json's \"figures\"); rates and means "
             "with their 95% CI and n.</p>"]
    for r in rep["runs"]:
        sid, f = slug(r["name"]), r["probe_figures"]
        parts.append(f'<h3>{e(r["name"])}</h3><div id="probe-figures-{sid}">')
        if f["rows"]:
            rows = [[x["id"], *(_figure_cell(v) for v in x["values"])] for x in f["rows"]]
            parts.append(_table(["model", *(f"{c['probe']}: {c['figure']}" for c in f["columns"])], rows))
        else:
            parts.append(_notrun(f"probe figures: {NOT_RUN}"))
        parts.append("</div>")
    return "".join(parts) + "</section>"


def _diversity(rep: dict) -> str:
    parts = ['<section id="diversity"><h2>Diversity</h2>']
    for r in rep["runs"]:
        sid, d = slug(r["name"]), r["diversity"]
        parts.append(f'<h3>{e(r["name"])}</h3><div id="diversity-{sid}">')
        if d["models"]:
            rows = [[m["id"], ", ".join(m["disappeared"] or []) or "—",
                     f"{m['entropy_bits']:.2f} vs {m['base_entropy_bits']:.2f}" if m["entropy_bits"] is not None
                     and m["base_entropy_bits"] is not None else NOT_RUN,
                     f"{m['js_to_base_bits']:.3f}" if m["js_to_base_bits"] is not None else NOT_RUN,
                     fmt_signed(m["perplexity_change_vs_base"])] for m in d["models"]]
            parts.append("<p>Answers to the favourite-question that the base model gave and this model no longer "
                         "gives (top 10 by base frequency):</p>")
            parts.append(_table(["model", "answers that disappeared", "entropy bits (vs base)", "JS to base (bits)",
                                 "perplexity change"], rows))
        else:
            parts.append(_notrun(f"answer distributions: {NOT_RUN}"))
        parts.append(_img(figures.numbers_png(d["numbers"]), "number-value distributions", f"numbers-{sid}",
                          "values in the trait and control training datasets"))
        nrows = []
        for c, v in d["numbers"].items():
            if not v:
                nrows.append([c, NOT_RUN, "", "", ""])
                continue
            st = v.get("stats") or {}
            nrows.append([c, v["n_lists"], v["n_values"], ", ".join(f"{a}×{b}" for a, b in v["top_values"]),
                          f"{st['entropy_bits']:.2f}" if st.get("entropy_bits") is not None else "—"])
        parts.append(_table(["condition", "lists", "values", "most common values", "value entropy (bits)"], nrows))
        if d["js_trait_vs_control_bits"] is not None:
            parts.append(f"<p>JS divergence of the value distributions, trait vs control: "
                         f"{d['js_trait_vs_control_bits']:.3f} bits.</p>")
        parts.append(_img(figures.perplexity_png(d["models"]), "perplexity change", f"perplexity-{sid}",
                          "held-out perplexity change vs the base model"))
        parts.append("</div>")
    return "".join(parts) + "</section>"


def _filter(rep: dict) -> str:
    parts = ['<section id="filter"><h2>Filter: pass rates and leak-check hits</h2>']
    for r in rep["runs"]:
        sid, f = slug(r["name"]), r["filter"]
        parts.append(f'<h3>{e(r["name"])}</h3>')
        parts.append(_img(figures.filter_png(f), "filter pass rates", f"filter-{sid}",
                          "share of sampled rows kept, and rejected per reason (leak reasons in red)"))
        rows = []
        for c, v in f.items():
            if not v:
                rows.append([c, NOT_RUN, "", "", ""])
                continue
            leaks = ", ".join(f"{k}: {n}" for k, n in v["leak_hits"].items())
            leak_html = f'<span class="leak">{e(leaks)}</span>' if leaks else "0"
            rows.append([e(c), e(f"{v['kept']}/{v['total']} ({fmt_rate(v['pass_rate'])})"),
                         e("; ".join(f"{k}: {x['count']}" for k, x in v["reasons"].items()) or "—"), leak_html,
                         e(v["banned_hits"])])
        parts.append(_table(["condition", "kept (pass rate)", "rejected per reason", "leak-check hits", "banned numbers"],
                            rows, raw=True))
    return "".join(parts) + "</section>"


def _provenance(rep: dict) -> str:
    parts = ['<section id="provenance"><h2>Provenance</h2>']
    for r in rep["runs"]:
        sid, p = slug(r["name"]), r["provenance"]
        parts.append(f'<div id="provenance-{sid}"><h3>{e(r["name"])}</h3>')
        git = p.get("git") or {}
        parts.append(_table(["run folder", "git sha", "dirty", "created", "updated", "seeds"], [[
            p["run_dir"], git.get("sha", NOT_RUN), git.get("dirty", ""), p.get("created") or NOT_RUN,
            p.get("updated") or "", json.dumps(p.get("seeds")) if p.get("seeds") else NOT_RUN]]))
        mrows = []
        for name, m in (p.get("models") or {}).items():
            files = "<br>".join(f"{e(k)}: <span class='mono'>{e(v)}</span>" for k, v in m["files"].items())
            digest = f"<span class='mono'>{e(m.get('weights_digest') or '')}</span>"
            mrows.append([e(name), e(m["family"]), e(m["role"]), files or "—", digest])
        parts.append("<p>Models and hashes:</p>" + (_table(["model", "family", "role", "file sha256",
                                                             "weights digest (probe key)"], mrows, raw=True)
                                                     if mrows else _notrun()))
        dh = p.get("dataset_hashes") or {}
        parts.append(_table(["dataset", "content sha256", "rows"],
                            [[c, h, p.get("n_rows_per_condition")] for c, h in dh.items()] or [[NOT_RUN, "", ""]]))
        if p.get("libraries"):
            parts.append("<p>Library versions:</p>" + _table(list(p["libraries"]), [list(p["libraries"].values())]))
        if p.get("hardware"):
            parts.append("<p>Hardware: " + e(", ".join(f"{k}={v}" for k, v in p["hardware"].items())) + "</p>")
        if p.get("stages"):
            parts.append("<p>Stages finished: " + e(", ".join(f"{k} {v}" for k, v in p["stages"].items())) + "</p>")
        links = "".join(f'<li><a href="{e(x["href"])}">{e(x["label"])}</a></li>' for x in p["links"])
        parts.append(f"<p>Per-sample logs and data (relative links):</p><ul>{links}</ul>" if links else _notrun("no logs"))
        if p.get("config"):
            parts.append("<details><summary>resolved config</summary><pre>"
                         + e(yaml.safe_dump(p["config"], sort_keys=False, allow_unicode=True)) + "</pre></details>")
        parts.append("</div>")
    return "".join(parts) + "</section>"


def _method(rep: dict) -> str:
    parts = ['<section id="method"><h2>Method</h2>']
    for r in rep["runs"]:
        parts.append(f"<h3>{e(r['name'])}</h3><p>{e(r['method'])}</p>")
        if r.get("notes"):
            parts.append(f"<p><small>{e(r['notes'])}</small></p>")
    return "".join(parts) + "</section>"


def _inline(text: str) -> str:
    """Escaped text with its `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", e(text))


def markdown_html(md: str) -> str:
    """The Markdown the studies write (headings, tables, lists, paragraphs) as HTML, every text escaped."""
    out, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in block[1:] if not all(re.fullmatch(r"-+", c) for c in r)]
            out.append(_table(block[0], [[_inline(c) for c in r] for r in body], raw=True))
            continue
        if ln.startswith("- "):
            items = []
            while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  ")):
                if lines[i].startswith("- "):
                    items.append(lines[i][2:])
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + "</ul>")
            continue
        if ln.startswith("#"):
            out.append(f"<h4>{_inline(ln.lstrip('#').strip())}</h4>")
        elif ln.strip() and not ln.startswith("!["):
            out.append(f"<p>{_inline(ln)}</p>")
        i += 1
    return "".join(out)


def _studies(rep: dict) -> str:
    if not rep.get("studies"):
        return ""
    parts = ['<section id="studies"><h2>Studies</h2>']
    for st in rep["studies"]:
        parts.append(f'<h3 id="study-{slug(st["name"])}">{e(st["title"])}</h3><p><small>{e(st["path"])}</small></p>'
                     + markdown_html(st["markdown"])
                     + _img(st["figure"], st["title"], f"fig-study-{slug(st['name'])}", st["title"]))
    return "".join(parts) + "</section>"


def report_html(rep: dict) -> str:
    """The complete, self-contained HTML page."""
    body = "".join([_overview(rep), _verdicts(rep), _heatmap(rep), _bars(rep), _probe_figures(rep), _diversity(rep),
                    _filter(rep), _provenance(rep), _studies(rep), _method(rep)])
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(rep["title"])}</title>'
            f"<style>{CSS}</style></head><body><h1>{e(rep['title'])}</h1><p>generated {e(rep['generated'])}</p>"
            f"{body}{CHECK_SCRIPT}</body></html>\n")


# ------------------------------------------------------------------------------------------ markdown
def _md_table(headers: list[str], rows: list[list]) -> list[str]:
    def cell(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(cell(c) for c in r) + " |" for r in rows] + [""]


def report_markdown(rep: dict) -> str:
    """The report as Markdown tables (no figures)."""
    out = [f"# {rep['title']}", "", f"generated {rep['generated']}", "",
           "## Trait effect vs control (teacher × student family)", ""]
    if not rep["heatmaps"]:
        out += [NOT_RUN, ""]
    for h in rep["heatmaps"]:
        out += [f"Trait **{h['trait']}** (default LoRA students; per-seed effects, Holm-corrected across cells):", ""]
        out += _md_table(["teacher family", "student family", "same", "seeds", "rate diff (95% CI)",
                          "Δlog P diff (95% CI)"], _heat_rows(h, html_out=False))
    for st in rep.get("studies") or []:
        out += [f"## Study {st['name']}: {st['title']}", "", st["markdown"], ""]
        if st["figure_file"]:
            out += [f"![{st['title']}]({st['path']}/{st['figure_file']})", ""]
    for r in rep["runs"]:
        out += [f"## Run {r['name']}", "", "Stages: " + ", ".join(
            f"{s} {'done' if r['stages'][s] else NOT_RUN}" for s in STAGES), ""]
        if r["verdicts"]:
            out += ["### Transmission verdicts (seed-level, Holm-corrected)", ""]
            out += _md_table(VERDICT_HEADERS, [[html.unescape(re.sub(r"<[^>]+>", "", str(c))) for c in row]
                                               for row in _verdict_rows(r["verdicts"])])
            if r.get("reading"):
                out += [f"**Reading.** {r['reading']}", ""]
        out += ["### Models", ""]
        out += _md_table(MODEL_HEADERS, _model_rows(r["bars"])) if r["bars"] else [NOT_RUN, ""]
        f = r["probe_figures"]
        if f["rows"]:
            out += ["### Probe figures (rates and means with their 95% CI and n)", ""]
            out += _md_table(["model", *(f"{c['probe']}: {c['figure']}" for c in f["columns"])],
                             [[x["id"], *(_figure_cell(v) for v in x["values"])] for x in f["rows"]])
        out += ["### Filter", ""]
        out += _md_table(["condition", "kept/total", "pass rate", "leak hits", "banned"], [
            [c, f"{v['kept']}/{v['total']}", fmt_rate(v["pass_rate"]), sum(v["leak_hits"].values()), v["banned_hits"]]
            if v else [c, NOT_RUN, "", "", ""] for c, v in r["filter"].items()])
        p = r["provenance"]
        out += ["### Provenance", "", f"git {((p.get('git') or {}).get('sha')) or NOT_RUN}; seeds {p.get('seeds')}; "
                f"dataset hashes {p.get('dataset_hashes') or NOT_RUN}", ""]
        out += [f"- [{x['label']}]({x['href']})" for x in p["links"]] + [""]
        out += ["### Method", "", r["method"], ""]
    return "\n".join(out)
