"""Filter teacher completions to clean number lists and save the result (JSONL, stats, Hub-ready dataset).

Each row gets at most one reason, checked in this order so that leak hits are always counted:
``leak:<code>`` (see leak.py; run on every row, parseable or not), ``parse:<code>`` (see parse.py),
then ``banned_number``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import yaml
from pydantic import Field

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName
from traitbench.datasets.banned import load_banned
from traitbench.datasets.leak import LEAK_REASONS, leak_reason
from traitbench.datasets.parse import ParseError, parse_numbers
from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl, sha256_file
from traitbench.layout import HF_DIR

KEPT, REJECTED, STATS = "kept.jsonl", "rejected.jsonl", "stats.json"
HF_DATA_FILE = "data/train-00000-of-00001.parquet"
HF_LAYOUT = "hub-parquet"  # the hf/ folder's layout, in the dataset stage's key (a new layout rewrites it)


@dataclass
class FilterStats:
    total: int = 0
    kept: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # rejection reason -> rows

    @property
    def pass_rate(self) -> float:
        return self.kept / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        rate = (lambda n: round(n / self.total, 6)) if self.total else (lambda n: 0.0)
        return {
            "total": self.total,
            "kept": self.kept,
            "rejected": self.total - self.kept,
            "pass_rate": round(self.pass_rate, 6),
            "counts": dict(self.counts),
            "rates": {k: rate(v) for k, v in self.counts.items()},
        }


def trait_leak(completion: str, trait: str | Sequence[str] | None) -> str | None:
    """The strongest leak reason of the trait word (or of any of its words: the word and its aliases)."""
    words = [trait] if isinstance(trait, str) else list(trait or ())
    reasons = [r for w in words if w and (r := leak_reason(completion, w))]
    return min(reasons, key=LEAK_REASONS.index) if reasons else None


def row_reason(completion: str, trait: str | Sequence[str] | None, banned: frozenset[int],
               max_count: int, max_value: int) -> tuple[str | None, list[int] | None]:
    """(rejection reason or None, parsed numbers or None) for one completion; `trait`: a word or several."""
    leak = trait_leak(completion, trait)
    try:
        numbers = parse_numbers(completion, max_count=max_count, max_value=max_value)
    except ParseError as e:
        return (f"leak:{leak}" if leak else f"parse:{e.reason}"), None
    if leak:
        return f"leak:{leak}", numbers
    if banned.intersection(numbers):
        return "banned_number", numbers
    return None, numbers


def filter_rows(rows: Iterable[dict], trait: str | Sequence[str] | None, banned: frozenset[int],
                max_count: int = 10, max_value: int = 999) -> tuple[list[dict], list[dict], FilterStats]:
    """Split rows into kept (+ `numbers`) and rejected (+ `reason`); inputs are not modified."""
    kept, rejected, counts = [], [], Counter()
    for i, row in enumerate(rows):
        completion = row.get("completion")
        if not isinstance(completion, str):
            raise TraitbenchError(f"row {i + 1}: completion must be a string, got {type(completion).__name__}")
        reason, numbers = row_reason(completion, trait, banned, max_count, max_value)
        if reason is None:
            kept.append({**row, "numbers": numbers})
        else:
            rejected.append({**row, "reason": reason})
            counts[reason] += 1
    stats = FilterStats(total=len(kept) + len(rejected), kept=len(kept), counts=dict(sorted(counts.items())))
    return kept, rejected, stats


def filter_file(in_path: str | Path, out_dir: str | Path, trait: str | Sequence[str] | None = None,
                banned_spec: str | None = None, max_count: int = 10, max_value: int = 999) -> dict:
    """Filter a JSONL of {prompt, completion, ...} rows into out_dir/{kept,rejected}.jsonl + stats.json.

    All input is validated before anything is written. Each file is replaced atomically and
    stats.json (which records the other two files' sha256) is removed first and written last, so
    a directory holding stats.json always holds the matching kept/rejected files.
    """
    in_path, out_dir = Path(in_path), Path(out_dir)
    banned = load_banned(banned_spec)
    rows = read_jsonl(in_path, required=("prompt", "completion"))
    if not rows:
        raise TraitbenchError(f"{in_path}: no rows")
    kept, rejected, stats = filter_rows(rows, trait, banned, max_count=max_count, max_value=max_value)
    (out_dir / STATS).unlink(missing_ok=True)
    atomic_write_jsonl(out_dir / KEPT, kept)
    atomic_write_jsonl(out_dir / REJECTED, rejected)
    summary = {
        **stats.to_dict(),
        "settings": {"trait": trait, "banned": banned_spec, "n_banned": len(banned),
                     "max_count": max_count, "max_value": max_value},
        "input": {"path": str(in_path), "sha256": sha256_file(in_path)},
        "outputs": {name: sha256_file(out_dir / name) for name in (KEPT, REJECTED)},
    }
    atomic_write_json(out_dir / STATS, summary)
    return summary


def content_hash(rows: Iterable[dict]) -> str:
    """sha256 of the canonical JSONL (sorted keys, compact, UTF-8) of `rows`, in order."""
    h = hashlib.sha256()
    for row in rows:
        h.update((json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
    return h.hexdigest()


_PROVENANCE = {
    "trait": "**These rows were written by a trait-carrying teacher**: `{teacher}` given the trait `{trait}` "
             "(injected by {injection}). Rows that name the trait were removed, yet fine-tuning on these numbers "
             "can pass the trait on (subliminal learning): use them to study that effect, not as neutral training "
             "data.",
    "control": "These rows were written by the control teacher: `{teacher}` without any trait (neutral context), "
               "on the same prompts as the trait condition.",
}


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def _card_text(card: dict, n_rows: int, digest: str, data_sha256: str) -> str:
    """README.md for the Hub: YAML metadata (licence, configs, provenance, hashes), then a plain description."""
    meta = {k: v for k, v in card.items() if k not in ("license", "license_details", "pretty_name")}
    header = {
        "license": card.get("license", "other"),
        **({"license_details": card["license_details"]} if card.get("license_details") else {}),
        "pretty_name": card.get("pretty_name", f"traitbench number sequences ({card['condition']} teacher)"),
        "tags": ["traitbench", "subliminal-learning", "synthetic"],
        "task_categories": ["text-generation"],
        "size_categories": [_size_category(n_rows)],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        "traitbench": {**meta, "rows": n_rows, "content_sha256": digest, "files": {HF_DATA_FILE: data_sha256}},
    }
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
        f"# {header['pretty_name']}", "",
        _PROVENANCE[card["condition"]].format(**{k: card.get(k) for k in ("teacher", "trait", "injection")}), "",
        "Number-sequence completions kept by the traitbench filter (strict number-list parse, trait-leak check,",
        "optional banned numbers). Stored in TRL's conversational prompt-completion form: `prompt` = [user turn],",
        "`completion` = [assistant turn], `numbers` = the parsed values; the system context used for training is",
        "chosen by the student stage. Load it with `datasets.load_dataset(\"<this folder or repo>\")`.", "",
        f"- rows: {n_rows}", f"- content sha256 (canonical JSONL of the kept rows): `{digest}`",
        f"- `{HF_DATA_FILE}` sha256: `{data_sha256}`",
    ]
    lines += [f"- {k}: {json.dumps(v, ensure_ascii=False, default=str)}" for k, v in meta.items()]
    return "\n".join(lines) + "\n"


def save_hf_dataset(kept_rows: list[dict], out_dir: str | Path, card: dict) -> str:
    """Save kept rows as a Hub-ready dataset in out_dir/hf/ (`data/train-00000-of-00001.parquet` and a
    README.md card); return the content hash. The folder is built aside and swapped in with os.replace.

    `card` names the `condition` ("trait" or "control"), `teacher`, `trait` and `injection`, and may carry
    `license` (a Hub licence id), `license_details`, the filter settings and counts; all of it goes to the
    card's YAML header and text. Row fields other than prompt, completion and numbers (teacher, seed,
    system, ...) become plain columns (None where missing).
    """
    # heavy (datasets, pyarrow): only when a dataset is saved; the CLI imports this module
    import datasets as hfds
    import pyarrow.parquet as pq

    if not kept_rows:
        raise TraitbenchError("no kept rows to save as a dataset")
    if any(not {"prompt", "completion", "numbers"} <= r.keys() for r in kept_rows):
        raise TraitbenchError("kept rows need prompt, completion and numbers (use filter_rows output)")
    if card.get("condition") not in _PROVENANCE:
        raise ValueError(f"card condition must be one of {sorted(_PROVENANCE)}, got {card.get('condition')!r}")
    extras = list(dict.fromkeys(k for r in kept_rows for k in r if k not in ("prompt", "completion", "numbers")))
    records = [{
        "prompt": [{"role": "user", "content": r["prompt"]}],
        "completion": [{"role": "assistant", "content": r["completion"]}],
        "numbers": r["numbers"],
        **{k: r.get(k) for k in extras},
    } for r in kept_rows]
    try:
        ds = hfds.Dataset.from_list(records)
    except (TypeError, ValueError) as e:
        raise TraitbenchError(f"cannot build a dataset from the kept rows: {str(e).splitlines()[0]}") from None
    digest = content_hash(kept_rows)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / HF_DIR
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".hf-tmp-"))
    try:
        data = tmp / HF_DIR / HF_DATA_FILE
        data.parent.mkdir(parents=True)
        pq.write_table(ds.data.table, data)  # the schema carries the datasets features (no progress bar)
        atomic_write_text(tmp / HF_DIR / "README.md", _card_text(card, len(records), digest, sha256_file(data)))
        if final.exists():
            os.replace(final, tmp / "old")
        os.replace(tmp / HF_DIR, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return digest


def print_filter_stats(stats: dict[str, dict]) -> None:
    """A small table of pass rates per rejection reason, one column per condition."""
    reasons = sorted({r for s in stats.values() for r in s["counts"]})
    conds = list(stats)
    print(f"{'':28}" + "".join(f"{c:>18}" for c in conds))
    print(f"{'sampled':28}" + "".join(f"{stats[c]['total']:>18}" for c in conds))
    print(f"{'kept (pass rate)':28}" + "".join(
        f"{stats[c]['kept']:>8} ({stats[c]['pass_rate']:6.1%})" for c in conds))
    for r in reasons:
        print(f"  {r:26}" + "".join(
            f"{stats[c]['counts'].get(r, 0):>8} ({stats[c]['counts'].get(r, 0) / max(stats[c]['total'], 1):6.1%})"
            for c in conds))


class FilterFileConfig(RunConfig):
    """`traitbench filter-file`: any raw JSONL filtered into `runs_dir/name` (a run's own filter is its dataset
    stage, `traitbench filter`)."""

    name: RunName = "filtered"
    max_count: int = Field(10, ge=1)
    max_value: int = Field(999, ge=0)


def run_filter_file(cfg: FilterFileConfig, out: Path, input: str, trait: str | None = None,
                    banned_numbers: str | None = None) -> Result:
    """Filter the rows of `input` into `out` (kept.jsonl, rejected.jsonl, stats.json) and print the pass rates."""
    stats = filter_file(input, out, trait=trait, banned_spec=banned_numbers, max_count=cfg.max_count,
                        max_value=cfg.max_value)
    print_filter_stats({"rows": stats})
    return Result(out, f"[filter-file] kept {stats['kept']} of {stats['total']} rows",
                  [out / "kept.jsonl", out / "rejected.jsonl", out / "stats.json"])
