"""Command-line entry for one student run; data-parallel under `accelerate launch --num_processes N -m ...`.

    python -m traitbench.student.launch --model smollm2-135m --rows kept.jsonl --out runs/s0 --set lr=1e-4
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from traitbench.config import load_config
from traitbench.errors import TraitbenchError
from traitbench.io import read_jsonl
from traitbench.student.config import StudentConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m traitbench.student.launch", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="registry name or local model folder")
    ap.add_argument("--rows", required=True, help="JSONL rows with `prompt` and `completion`")
    ap.add_argument("--out", required=True, help="student folder to write")
    ap.add_argument("--system", default=None, help="system prompt of the training context (default: none)")
    ap.add_argument("--teacher", default=None, help="teacher model (mode=distill)")
    ap.add_argument("--teacher-adapter", default=None, help="teacher LoRA adapter or student folder")
    ap.add_argument("--teacher-system", default=None, help="the teacher's system prompt (mode=distill)")
    ap.add_argument("--condition", choices=["trait", "control"], default=None,
                    help="which teacher wrote the rows (for the model card)")
    ap.add_argument("--trait", default=None, help="the trait teacher's trait (for the model card)")
    ap.add_argument("--config", default=None, help="StudentConfig YAML file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    args = ap.parse_args(argv)
    env = os.environ
    if env.get("ACCELERATE_USE_CPU") == "True" and "MASTER_ADDR" in env and "WORLD_SIZE" not in env:
        print("warning: `accelerate launch --cpu` started one process (multi-CPU needs an MPI hostfile); for N CPU "
              "processes use `accelerate launch --multi_gpu --num_processes N` on a machine without GPUs, or torchrun",
              file=sys.stderr)
    try:
        cfg = load_config(StudentConfig, args.config, args.set)
        rows = read_jsonl(args.rows, required=("prompt", "completion"))
        # heavy (TRL, PEFT, accelerate): only once the config and rows are checked
        from accelerate import PartialState

        from traitbench.student.train import train_student

        metrics = train_student(args.model, rows, args.system, cfg, args.out, teacher=args.teacher,
                                teacher_adapter=args.teacher_adapter, teacher_system=args.teacher_system,
                                condition=args.condition, trait=args.trait)
    except TraitbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if PartialState().is_main_process:
        print(json.dumps({k: metrics[k] for k in ("steps", "final_loss", "wall_seconds", "tokens_per_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
