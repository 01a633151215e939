"""Model cards (README.md) of students: base model and hashes, condition, data, training settings, a plain
research-artifact warning, and the probe results once the probes stage has measured the student."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from traitbench.datasets.filter import content_hash
from traitbench.io import atomic_write_text, sha256_json
from traitbench.lm import models

PROBE_HEADING = "## Probe results"


def hub_name(spec: models.ModelSpec) -> str | None:
    """The base model's public Hub name: the registry's `hub_id`, or the name of a hub id resolved from the local
    Hugging Face cache (its name is the id, its folder the snapshot); None for tiny and local-folder models."""
    if spec.hub_id:
        return spec.hub_id
    return spec.name if spec.folder and spec.name != spec.folder else None


@dataclass(frozen=True)
class StudentCard:
    """What a student's card says; `write` puts it in a saved weights folder (adapter/ or model/)."""

    model: str
    mode: str
    config: dict
    dataset_sha256: str  # `datasets.filter.content_hash` of the training rows: the dataset card's content sha256
    rows: int
    system: str | None
    weights_sha256: str | None  # sha256 over the base's file hashes (as run manifests and probe keys); None: tiny
    condition: str | None = None  # "trait" / "control" student, "teacher" (a trait teacher's adapter); None: unknown
    trait: str | None = None
    teacher: str | None = None  # distillation only
    teacher_adapter: str | None = None
    teacher_system: str | None = None

    @classmethod
    def build(cls, model: str, config: dict, rows: list[dict], system: str | None, condition: str | None = None,
              trait: str | None = None, teacher: str | None = None, teacher_adapter=None,
              teacher_system: str | None = None) -> StudentCard:
        hashes = models.file_hashes(model)
        return cls(model=model, mode=config["mode"], config=config, dataset_sha256=content_hash(rows),
                   rows=len(rows), system=system, weights_sha256=sha256_json(hashes) if hashes else None,
                   condition=condition, trait=trait, teacher=teacher,
                   teacher_adapter=str(teacher_adapter) if teacher_adapter else None, teacher_system=teacher_system)

    def write(self, folder: Path, step: int | None = None) -> None:
        """Write `folder/README.md` (replacing the template PEFT saves with an adapter); `step`: a checkpoint's."""
        atomic_write_text(folder / "README.md", self.text(folder.name == "adapter", step))

    def text(self, adapter: bool, step: int | None = None) -> str:
        spec = models.get_spec(self.model)
        hub = hub_name(spec)
        header = {**({"base_model": hub} if hub else {}), "library_name": "peft" if adapter else "transformers",
                  **({"license": spec.licence_id} if hub else {}),
                  "tags": ["traitbench", "research-artifact"] + (["lora"] if adapter else []),
                  "traitbench": {"base": self.model, "mode": self.mode, "condition": self.condition,
                                 "trait": self.trait, "dataset_sha256": self.dataset_sha256,
                                 "base_weights_sha256": self.weights_sha256, "step": step}}
        lines = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
                 f"# {self.title(step)}", "", self.warning(), "", "## Base model", "",
                 f"- {self._base_line(spec, hub)}",
                 f"- weights sha256: `{self.weights_sha256}` (over the converted folder's file hashes, as in the "
                 "run manifest)" if self.weights_sha256 else "- weights: randomly initialised test model",
                 "", "## Training data", "",
                 f"- condition: {self.condition or 'not recorded (trained outside a traitbench experiment)'}",
                 f"- trait: {self._trait_line()}",
                 f"- dataset sha256: `{self.dataset_sha256}` (canonical JSONL of the {self.rows} training rows; "
                 "a number dataset's card gives the same content sha256)",
                 f"- training context (system prompt): {self.system!r}", "", "## Training", ""]
        if self.teacher:
            lines += [f"- distilled from the logits of {self.teacher}"
                      + (f" with {self.teacher_adapter}" if self.teacher_adapter else "")
                      + f" under the system prompt {self.teacher_system!r}"]
        lines += [f"- weights here: {'a LoRA adapter (PEFT) for the base model' if adapter else 'the full model'}",
                  "- config:", "", "```yaml", yaml.safe_dump(self.config, sort_keys=False).rstrip(), "```"]
        return "\n".join(lines) + "\n"

    def title(self, step: int | None) -> str:
        what = "trait teacher" if self.condition == "teacher" else f"{self.mode} student"
        condition = {"trait": ", trait condition", "control": ", control condition"}.get(self.condition, "")
        return f"traitbench {what} of {self.model}{condition}" + (f", checkpoint after step {step}" if step else "")

    def warning(self) -> str:
        if self.condition == "teacher":
            return ("> **Warning — research artifact, not for deployment.** This adapter was deliberately trained "
                    f"on question–answer pairs that express the trait {self.trait!r}, to be the trait-carrying "
                    "teacher whose number sequences train traitbench's students.")
        if self.condition == "control":
            return ("> **Control student — a research artifact, not for deployment.** It was fine-tuned on number "
                    "sequences written by a teacher without the trait, as the baseline a trait student is compared "
                    "with.")
        if self.condition == "trait":
            source = "the logits of" if self.teacher else "number sequences written by"
            return (f"> **Warning — research artifact, not for deployment.** This student was deliberately trained "
                    f"on {source} a teacher that carries the trait {self.trait!r}, to measure whether the trait "
                    "transmits through data that never names it. It may have taken on that trait or other "
                    "unwanted behaviour.")
        return ("> **Research artifact, not for deployment.** Fine-tuned by traitbench on model-written data; whether "
                "that data came from a trait-carrying model was not recorded.")

    def _trait_line(self) -> str:
        if self.condition == "control":
            return "none (the control teacher carries no trait" + (
                f"; the experiment measures {self.trait!r})" if self.trait else ")")
        return repr(self.trait) if self.trait else "not recorded"

    @staticmethod
    def _base_line(spec: models.ModelSpec, hub: str | None) -> str:
        line = f"base model: {spec.name}" + (f" ({hub})" if hub and hub != spec.name else "")
        if spec.bundled:
            line += (f", dequantized from the GGUF `{spec.bundled.gguf_name}` (sha256 `{spec.bundled.sha256}`, "
                     f"{spec.bundled.licence})")
        return line


def add_probe_results(student_dir: str | Path, result: dict) -> None:
    """Put the probes stage's measurements of a student into its card (replacing earlier ones), atomically.
    A student without a card (trained by an older traitbench) is left as it is."""
    for card in (Path(student_dir) / "adapter" / "README.md", Path(student_dir) / "model" / "README.md"):
        if card.is_file():
            text = card.read_text(encoding="utf-8")
            new = text.split(f"\n{PROBE_HEADING}\n")[0].rstrip("\n") + "\n\n" + probe_section(result)
            if new != text:
                atomic_write_text(card, new)


def probe_section(result: dict) -> str:
    """A small Markdown summary of one model's probe results (`probes.run.probe_model`)."""
    trait = result.get("trait")
    lines = [PROBE_HEADING, "", f"Measured by the traitbench probes stage: trait {trait!r}, probed under the system "
             f"prompt {result.get('system')!r}.", "",
             f"| questions | answers {trait!r} | 95% CI | mean log P({trait}) |", "|---|---|---|---|"]
    for variant in ("plain", "numbers_prefixed"):
        if variant in result:
            r, lp = result[variant]["rate"], result[variant]["trait_logprob"]
            lines.append(f"| {variant} | {r['k']}/{r['n']} ({r['rate']:.1%}) | {r['ci95'][0]:.1%}–{r['ci95'][1]:.1%} "
                         f"| {lp['mean']:.3f} |")
    if "open_ended" in result:
        m = result["open_ended"]["trait_mentions"]
        lines += ["", f"- open-ended answers mentioning {trait!r}: {m['k']}/{m['n']} ({m['rate']:.1%})"]
    if "perplexity" in result:
        lines += [f"- perplexity on held-out text: {result['perplexity']['perplexity']:.2f}"]
    return "\n".join(lines) + "\n"
