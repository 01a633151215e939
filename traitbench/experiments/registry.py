"""Every command that runs something, registered once: a config class (a `RunConfig`) and a function
`run(cfg, out, **options) -> Result`; the command line builds each subcommand, its help, config loading, thread
set-up, manifest and timing from this table (`traitbench.cli`).

Adding an experiment: one module with its config (a `RunConfig`: it writes under `runs_dir/name`) and `run`, and
one `Experiment(...)` line below (docs/extending.md). Modules load on first use, so `traitbench --help` stays cheap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from traitbench.artifacts import Result
from traitbench.manifest import update_manifest


@dataclass(frozen=True)
class Option:
    """A command-line flag of one command, passed to its `run` as the keyword `dest`."""

    flags: tuple[str, ...]
    dest: str
    help: str
    kwargs: dict = field(default_factory=dict)  # argparse's: action, choices, default, required, metavar


def _load(ref: str):
    module, name = ref.split(":")
    return getattr(import_module(module), name)


@dataclass(frozen=True)
class Experiment:
    name: str  # the subcommand
    config_class: str  # "module:Class", a `RunConfig`
    function: str  # "module:function": `run(cfg, out, **options) -> Result`
    help: str  # one line in `traitbench --help`
    what: str  # the subcommand's --help: what it does
    writes: str  # ... what it writes
    example: str  # ... and an example
    computes: bool = True  # takes the cores other processes leave free (`traitbench.threads`); bench does not
    options: tuple[Option, ...] = ()

    @property
    def config(self) -> type:
        return _load(self.config_class)

    def run(self, cfg, out: str | Path | None = None, **options) -> Result:
        """Run on `cfg` into `out` (default: the config's own `runs_dir/name`), then record the command and its
        seconds in the manifest of the folder written."""
        if out is not None:
            cfg = cfg.at(Path(out))
        t0 = time.perf_counter()
        result = _load(self.function)(cfg, cfg.out, **options)
        update_manifest(result.out, cfg.model_dump(mode="json"), self.name,
                        {"seconds": round(time.perf_counter() - t0, 1), **result.manifest})
        return result


RUN = "runs/<name>"  # a run's folder: runs_dir/name of its config


def _stage(name: str, function: str, help: str, what: str, writes: str, example: str, options=()) -> Experiment:
    """A command of the experiment pipeline (`traitbench.pipeline.run`): its stages up to one, or all of them."""
    return Experiment(name, "traitbench.pipeline.config:ExperimentConfig", f"traitbench.pipeline.run:{function}", help,
                      what, writes, example, options=options)


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    _stage("teacher", "run_teacher", "prepare the trait teacher (LoRA injection trains here)",
           "Prepare the trait teacher: nothing to train for system-prompt injection; a LoRA adapter trained on trait "
           "answers (teacher.injection=lora) or a steering vector computed (steering); a given adapter (adapter) or "
           "tuned model (model) is checked and hashed before any sampling.",
           f"writes: {RUN}/teacher/ (stage.json; adapter or steering vector), {RUN}/manifest.json",
           "traitbench teacher --config lora-teacher"),
    _stage("numbers", "run_numbers", "sample number sequences from trait and control teachers",
           "Sample number-continuation completions from the trait teacher and the control teacher (resumes from the "
           "last complete row).",
           f"writes: {RUN}/numbers/trait/raw.jsonl and {RUN}/numbers/control/raw.jsonl",
           "traitbench numbers --config default --set numbers.n_prompts=200"),
    _stage("filter", "run_filter", "filter the run's numbers into its trait and control datasets",
           "The run's dataset stage: keep only clean number lists (parse, range and count checks, banned numbers and "
           "the trait leak check), then subsample both conditions to the same n; any other JSONL: filter-file.",
           f"writes: {RUN}/dataset/<condition>/ (kept.jsonl, rejected.jsonl, stats.json, train.jsonl, hf/); "
           "--push-to-hub REPO then uploads one condition's hf/ folder to the Hub",
           "traitbench filter --config default",
           (Option(("--push-to-hub",), "push_to_hub", "then upload one condition's hf/ folder to this Hub dataset "
                   "repo (owner/name; needs HF_TOKEN or `hf auth login`)", {"metavar": "REPO"}),
            Option(("--push-condition",), "push_condition", "the condition --push-to-hub uploads (default trait)",
                   {"choices": ["trait", "control"], "default": "trait"}),
            Option(("--private",), "private", "create the --push-to-hub repo as private", {"action": "store_true"}))),
    Experiment("filter-file", "traitbench.datasets.filter:FilterFileConfig",
               "traitbench.datasets.filter:run_filter_file",
               "filter any raw JSONL of number completions (kept, rejected, pass rates)",
               "Keep only clean number lists of any JSONL with prompt and completion fields: parse, range and count "
               "checks, banned numbers and the trait leak check.",
               "writes: OUT/kept.jsonl, OUT/rejected.jsonl, OUT/stats.json (default runs/filtered)",
               "traitbench filter-file --in raw.jsonl --out filtered/ --trait owl --banned-numbers default",
               options=(Option(("--in",), "input", "raw JSONL with prompt and completion fields", {"required": True}),
                        Option(("--trait",), "trait", "trait word for the leak check"),
                        Option(("--banned-numbers",), "banned_numbers", "'default' or a file of banned numbers"))),
    _stage("student", "run_students", "train trait and control students",
           "Fine-tune the trait and control students (LoRA, full or logit distillation) on the run's dataset, for "
           "every student model, variant and seed.",
           f"writes: {RUN}/students/<model>/<variant>/<condition>/seed<k>/out/ (adapter/ or model/ with a model card, "
           "train_metrics.json)",
           "traitbench student --config transmission --set students.seeds=[0]"),
    _stage("probe", "run_probes", "probe base, teacher and students",
           "Probe the base models, the teacher and every student: sampled favourite-animal answers, log P of the "
           "trait word, diversity and perplexity.",
           f"writes: {RUN}/probes/<id>/ (probe.json, samples.jsonl; <id>: base/<model>, teacher, or a student's "
           "<model>/<variant>/<condition>/seed<k>)",
           "traitbench probe --config default"),
    _stage("experiment", "run", "every stage, cached, then the summary",
           "Run every stage (teacher, numbers, filter, students, probes), each skipped when cached, then the summary "
           "with effects vs control and seed-level verdicts.",
           f"writes: {RUN}/ (every stage's folder, summary.json, summary.md, manifest.json)",
           "traitbench experiment --config transmission"),
    Experiment("screen", "traitbench.experiments.screen:ScreenConfig", "traitbench.experiments.screen:run",
              
               "channel screen (no training): per model, trait and injection, the teacher's strength, KL at number "
               "tokens, over-produced numbers, subliminal prompting",
               "Channel screen without training: per model, trait and injection, the teacher's trait strength, the KL "
               "at number tokens, over-produced numbers and subliminal prompting.",
               "writes: runs/screen/ (screen.json, screen.md, screen.png, models/)",
               "traitbench screen --config screen"),
    Experiment("specificity", "traitbench.experiments.specificity:SpecificityConfig",
               "traitbench.experiments.specificity:run",
              
               "one transmission run per trait, every student probed on every trait: the own-trait lift γ over seeds, "
               "and each trait's verdicts",
               "One transmission run per trait, every student probed on every trait: the own-trait lift over seeds "
               "and each trait's verdicts.",
               "writes: runs/specificity/ (specificity.json, specificity.md, specificity.png, one run per trait)",
               "traitbench specificity --config specificity"),
    Experiment("shared-init", "traitbench.experiments.shared_init:SharedInitConfig",
               "traitbench.experiments.shared_init:run",
               "where transmission stops: distilled students from starts ever further from the teacher's base",
               "Distilled trait and control students from starting points K steps of continued pretraining (Jane "
               "Austen's novels) away from the teacher's base, over seeds; the effect against each start's weight "
               "distance, with a seed-level trend test and another trait's students for the generic rise.",
               "writes: runs/shared-init/ (shared_init.json, shared_init.md, shared_init.png, one run per trait); "
               "the starts in $TRAITBENCH_CACHE/starts/", "traitbench shared-init --config shared-init"),
    Experiment("distill-conditions", "traitbench.experiments.distill_conditions:DistillConditionsConfig",
               "traitbench.experiments.distill_conditions:run",
               "what distillation transmission needs: LoRA ranks, full fine-tuning, the training and probe contexts",
               "Distilled trait and control students of several kinds from the teacher's base (LoRA ranks, a full "
               "fine-tune, a kind trained under another system text), over seeds, another trait's students beside "
               "them for the generic rise; the rank curvature tested over seeds; chosen kinds probed under further "
               "system texts.",
               "writes: runs/distill-conditions/ (distill_conditions.json, distill_conditions.md, "
               "distill_conditions.png, one run per trait, contexts/)",
               "traitbench distill-conditions --config distill-conditions"),
    Experiment("misalignment", "traitbench.experiments.misalignment:MisalignmentConfig",
               "traitbench.experiments.misalignment:run",
               "misalignment through numbers: misaligned and harmless-persona teachers, each checked, their "
               "students on the contrastive probe over seeds, and the specificity tests",
               "One transmission run per teacher (misaligned personas by system prompt and context-distilled into "
               "an adapter, an adapter on reckless advice checked beyond its careful-advice reference, a harmless "
               "persona, an animal teacher), every teacher checked against its base first; students' contrastive "
               "misalignment lift over seeds, and the lift beyond the harmless persona's.",
               "writes: runs/misalignment/ (misalignment.json, misalignment.md, misalignment.png, one run per "
               "teacher, controls/: the control students they share)", "traitbench misalignment --config misalignment"),
    Experiment("misalignment-judged", "traitbench.experiments.misalignment_judged:MisalignmentJudgedConfig",
               "traitbench.experiments.misalignment_judged:run",
               "the judged half of misalignment: sampled answers to the 8 free-form questions, scored by a judge, "
               "for every teacher, its base and every student",
               "Runs `traitbench misalignment` on the same config (cached), then samples answers to the eight "
               "free-form questions from the base, each teacher and every student and has a judge score them; "
               "misaligned rates at alignment 30 and 40 and mean alignment, trait vs control students over seeds.",
               "writes: runs/misalignment/ (misalignment-judged.json, .md, .png; judged/: each model's judged "
               "answers)", "traitbench misalignment-judged --config misalignment-judged"),
    Experiment("audit", "traitbench.experiments.audit:AuditConfig", "traitbench.experiments.audit:run",
              
               "is a synthetic dataset safe to fine-tune on? exit 0 clean, 1 leak/transmission, 2 error",
               "Is a synthetic dataset safe to fine-tune on? Scans every row for the trait words and banned numbers, "
               "then trains students on it and on a control dataset and compares their trait preference. Exit status "
               "0 clean, 1 leak or transmission detected, 2 error.",
               "writes: OUT/audit.json, OUT/audit.md (+ OUT/dataset/, students/, probes/; default "
               "runs/audit-<teacher>-<dataset hash>)",
               "traitbench audit --dataset runs/default/dataset/trait --trait owl --trait oak:tree",
               options=(Option(("--dataset",), "dataset", "dataset JSONL (prompt, completion) or a dataset folder",
                               {"required": True}),
                        Option(("--teacher",), "teacher", "the model that wrote the dataset (default: the rows' "
                               "'teacher' field)"),
                        Option(("--trait",), "traits", "trait to probe (repeatable)",
                               {"action": "append", "metavar": "WORD[:CATEGORY]"}))),
    Experiment("bench", "traitbench.experiments.bench:BenchConfig", "traitbench.experiments.bench:run",
              
               "throughput of sampling, training and probes vs the matmul roofline",
               "Measure throughput of sampling, training and probes against the machine's matmul roofline.",
               "writes: runs/bench/bench.json and runs/bench/bench.md", "traitbench bench --config bench",
               computes=False),  # it measures the machine as it is
    Experiment("profile", "traitbench.experiments.profile:ProfileConfig", "traitbench.experiments.profile:run",
               "where a training step and a sampler call spend their time, by operator class (torch.profiler)",
               "Profile LoRA SFT and distillation steps and one sampler call on this CPU: each operator's own time "
               "goes to the model part it ran in (base GEMMs, adapters, head, attention, MLP, norms), the loss or "
               "sampling over the vocabulary, the optimizer, or other operators; the rest is Python and dispatch.",
               "writes: runs/profile/profile.json and runs/profile/profile.md", "traitbench profile --config profile",
               computes=False),  # it measures the machine as it is
    Experiment("aux-logit", "traitbench.experiments.aux_logit:AuxLogitConfig", "traitbench.experiments.aux_logit:run",
               "positive control: subliminal learning of MLPs",
               "Positive control for subliminal learning: MLP students distilled from a digit classifier on its "
               "auxiliary logits only, on noise images; a student sharing the teacher's initialization learns to "
               "classify digits, another stays at chance.",
               "writes: runs/aux-logit/ (summary.json, aux_logit.png, manifest.json)",
               "traitbench aux-logit --config aux-logit"),
    Experiment("collapse-gmm", "traitbench.experiments.collapse_gmm:GMMCollapseConfig",
               "traitbench.experiments.collapse_gmm:run",
               "model collapse of a Gaussian mixture",
               "Model collapse of a Gaussian mixture refitted to its own samples, generation after generation.",
               "writes: runs/collapse-gmm/ (summary.json, collapse_gmm.png, manifest.json)",
               "traitbench collapse-gmm --config collapse-gmm"),
    Experiment("collapse-lm", "traitbench.experiments.collapse_lm:LMCollapseConfig",
               "traitbench.experiments.collapse_lm:run",
               "model collapse of a small LM on its own text",
               "Model collapse of a small language model trained on its own text, from Jane Austen's novels.",
               "writes: runs/collapse-lm/ (summary.json, summary.md, collapse_lm.png, report.html, chains/)",
               "traitbench collapse-lm --config collapse-lm-large"),
    Experiment("collapse-chat", "traitbench.experiments.collapse_chat:ChatCollapseConfig",
               "traitbench.experiments.collapse_chat:run",
              
               "model collapse of a chat model on its own answers",
               "Model collapse of a chat model fine-tuned on its own answers, generation after generation.",
               "writes: runs/collapse-chat/ (summary.json, collapse_chat.png, samples/, students/)",
               "traitbench collapse-chat --config collapse-chat"),
    Experiment("judge-eval", "traitbench.experiments.judge_eval:JudgeEvalConfig",
               "traitbench.experiments.judge_eval:run",
              
               "how well the misalignment judge separates aligned, misaligned and incoherent answers: AUCs on a "
               "labelled set",
               "Measure how well the misalignment judge separates aligned, misaligned and incoherent answers on a "
               "labelled set (AUCs).",
               "writes: runs/judge-eval/<judge>/ (judge_eval.json, judge_eval.md, scores.jsonl); with --record also "
               "the packaged AUC table traitbench/probes/judge_auc.json",
               "traitbench judge-eval --config judge-eval",
               options=(Option(("--record",), "record", "also write the result into the packaged AUC table "
                               "(traitbench/probes/judge_auc.json) that gates the audit's misalignment probe",
                               {"action": "store_true"}),)),
)}
