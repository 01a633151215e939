"""`traitbench` command line: one subcommand per stage; user errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from traitbench.errors import TraitbenchError


def _experiment(args):
    from traitbench.config import load_config
    from traitbench.experiment import ExperimentConfig

    return load_config(ExperimentConfig, args.config, args.set)


CONFIG_CLASSES = {  # each command's config: its packaged default, and the class it is read into
    "experiment": ("traitbench.experiment", "ExperimentConfig"), "audit": ("traitbench.report.audit", "AuditConfig"),
    "bench": ("traitbench.bench", "BenchConfig"), "screen": ("traitbench.screen", "ScreenConfig"),
    "specificity": ("traitbench.specificity", "SpecificityConfig"),
    "aux-logit": ("traitbench.controls.aux_logit", "AuxLogitConfig"),
    "collapse-gmm": ("traitbench.controls.gmm_collapse", "GMMCollapseConfig"),
    "collapse-lm": ("traitbench.controls.lm_collapse", "LMCollapseConfig"),
    "collapse-chat": ("traitbench.controls.chat_collapse", "ChatCollapseConfig"),
}


def _config_command(config: str | None) -> str:
    """The command a config belongs to, from its file name (`collapse-lm-large` → collapse-lm); else experiment."""
    stem = Path(config).stem if config else ""
    return max((c for c in CONFIG_CLASSES if stem == c or stem.startswith(c + "-")), key=len, default="experiment")


def cmd_config(args) -> int:
    import importlib

    import yaml

    from traitbench.config import PACKAGED, config_file, load_config, packaged_configs

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
    from traitbench import models

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


def cmd_teacher(args) -> int:
    from traitbench.pipeline import stage_teacher

    print(json.dumps(stage_teacher(_experiment(args)), indent=2))
    return 0


def cmd_numbers(args) -> int:
    from traitbench.experiment import CONDITIONS
    from traitbench.pipeline import stage_numbers

    cfg = _experiment(args)
    for c in CONDITIONS:
        out = stage_numbers(cfg, c)
        print(f"[numbers:{c}] {out['rows']} rows in {out['raw']} ({out['throughput']})")
    return 0


def cmd_filter(args) -> int:
    if args.input or args.out:
        if not (args.input and args.out):
            raise TraitbenchError("filter needs both --in and --out (or --config for the run's dataset stage)")
        from traitbench.datasets.filter import filter_file
        from traitbench.pipeline import print_filter_stats

        stats = filter_file(args.input, args.out, trait=args.trait, banned_spec=args.banned_numbers)
        print_filter_stats({"rows": stats})
        return 0
    from traitbench.pipeline import stage_dataset

    out = stage_dataset(_experiment(args))
    print(f"[dataset] {out['n_rows']} rows per condition: " + ", ".join(
        f"{c}: {v['hf']}" for c, v in out["conditions"].items()))
    return 0


def cmd_student(args) -> int:
    from traitbench.student.stage import stage_students

    for sid, out in stage_students(_experiment(args)).items():
        print(f"[student] {sid}: final loss {out['metrics'].get('final_loss')}")
    return 0


def cmd_probe(args) -> int:
    from traitbench.probes.stage import stage_probes

    stage_probes(_experiment(args))
    return 0


def cmd_experiment(args) -> int:
    from traitbench.pipeline import run_experiment

    cfg = _experiment(args)
    summary_path = run_experiment(cfg)
    print((summary_path.with_suffix(".md")).read_text())
    print(f"summary: {summary_path}")
    return 0


def cmd_report(args) -> int:
    from traitbench.report.build import write_report

    paths = write_report(args.runs, args.out)
    for kind, path in paths.items():
        print(f"report.{kind}: {path}")
    if args.check_render:
        from traitbench.report.render import check_render

        check = check_render(paths["html"], args.screenshot)
        print(check.line())
        return 0 if check.ok else 1
    return 0


def cmd_audit(args) -> int:
    from traitbench.config import load_config
    from traitbench.report.audit import AuditConfig, run_audit

    cfg = load_config(AuditConfig, args.config, args.set)
    report, status = run_audit(args.dataset, args.teacher, args.trait, cfg, args.out)
    for t in report["traits"]:
        print(f"[audit] {t['trait']}: {t['verdict']}" + (f" — {t['reason']}" if t["reason"] else ""))
    print(f"[audit] verdict: {report['verdict']}")
    print(f"[audit] report: {report['out']}/audit.md (exit status {status})")
    return status


def cmd_export(args) -> int:
    from traitbench.report.export import export_run

    paths = export_run(args.run, args.format, args.out)
    print(f"[export] {len(paths)} {args.format} file(s) in {paths[0].parent}")
    return 0


def cmd_bench(args) -> int:
    from traitbench.bench import BenchConfig, run_bench
    from traitbench.config import load_config

    cfg = load_config(BenchConfig, args.config, args.set)
    result = run_bench(cfg)
    print((Path(cfg.out_dir) / "bench.md").read_text())
    print(f"[bench] {Path(cfg.out_dir) / 'bench.json'} ({result['seconds']} s)")
    return 0


def _analysis(name: str, module: str, config_cls: str, run: str):
    """A command that runs `traitbench.<module>.<run>` on its config (default `configs/<name>.yaml`) and prints
    the Markdown table it returns beside the JSON and PNG written with it."""
    def command(args) -> int:
        import importlib

        from traitbench.config import load_config

        mod = importlib.import_module(f"traitbench.{module}")
        cfg = load_config(getattr(mod, config_cls), args.config, args.set)
        md = getattr(mod, run)(cfg)
        print(md.read_text())
        print(f"[{name}] {md}, {md.with_suffix('.json')}, {md.with_suffix('.png')}")
        return 0

    return command


def cmd_corpus(args) -> int:
    from traitbench.datasets.austen import DEB_PACKAGE, DEB_VERSION, corpus_source, fetch_austen

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
        import importlib

        mod = importlib.import_module(f"traitbench.controls.{module}")
        mod.main(args.config, args.set or [], args.out or out_default)
        return 0

    return run


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
    x = sub.add_parser("export", help="export probe results: inspect_ai eval logs or lm-eval-style results")
    x.add_argument("run", metavar="RUN")
    x.add_argument("--format", required=True, choices=["inspect", "lm-eval"])
    x.add_argument("--out", help="output folder (default RUN/export/<format>)")
    x.set_defaults(func=cmd_export)
    c = sub.add_parser("corpus", help="fetch the offline human-prose corpus (Jane Austen's six novels, from Debian)")
    c.add_argument("action", choices=["fetch"])
    c.add_argument("--force", action="store_true", help="download and rebuild even if already cached")
    c.set_defaults(func=cmd_corpus)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TraitbenchError as e:
        print(f"traitbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("traitbench: interrupted (finished work is kept; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
