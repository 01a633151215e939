"""Sweeps on Ray (`students.backend: ray`): the students and probes stages run their jobs as Ray tasks, on a local
Ray that traitbench starts or on a running cluster (`students.ray.address`), instead of the local worker pool.

Each task is one group of jobs (one model, kind and condition: consecutive students share the teacher's logits)
with its resources (`cpus_per_task` threads, `gpus_per_task`). Every job is still its own cached, atomic stage in
the run folder, so the tasks only fill the cache and the stage then reads its results as it does after a local
run: a cached job is never sent, and a task that fails is retried once (what it finished stays cached) and then
reported with the id of the first job it left undone. On a cluster, the run folder, the model cache and
traitbench itself must be reachable from every node at the same paths (a shared file system).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from traitbench.errors import TraitbenchError


def ray_module():
    """Ray, or a one-line error naming the extra that installs it."""
    try:
        import ray  # optional: pip install 'traitbench[ray]'
    except ImportError:
        raise TraitbenchError("students.backend: ray needs Ray: pip install 'traitbench[ray]'") from None
    return ray


def init_ray(cfg, threads: int) -> None:
    """Join the cluster at `cfg.address`, or start a local Ray with `cfg.num_cpus` CPUs (else `threads`), once per
    process (Ray shuts it down at exit)."""
    ray = ray_module()
    if ray.is_initialized():
        return
    local = cfg.address is None
    try:
        ray.init(address=cfg.address, num_cpus=(cfg.num_cpus or threads) if local else None,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as e:
        raise TraitbenchError(f"students.ray.address {cfg.address!r}: no Ray cluster there ({e})") from None
    where = "a local Ray" if local else f"the Ray cluster at {cfg.address}"
    print(f"[ray] {where}: {ray.cluster_resources().get('CPU', 0):.0f} CPUs, "
          f"{ray.cluster_resources().get('GPU', 0):.0f} GPUs", file=sys.stderr)


def _in_task(fn: Callable, args: tuple, cwd: str, threads: int, log: str):
    """Runs on a Ray worker: the driver's working directory and thread count, output to `log`, then `fn(*args)`."""
    import torch  # the task trains or probes

    os.chdir(cwd)
    torch.set_num_threads(threads)
    saved = os.dup(1), os.dup(2)
    with open(log, "a", buffering=1, encoding="utf-8") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            return fn(*args)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_on_ray(cfg, fn: Callable, tasks: list[tuple], undone: Callable[[int], str | None], n_jobs: int,
               done: Callable[[], int], log_dir: Path, desc: str, threads: int) -> None:
    """Run `fn(*args)` for every `args` in `tasks` as Ray tasks and wait for all; a progress bar counts `done()` of
    `n_jobs` jobs. A task that fails twice raises a one-line error naming `undone(i)`, its first unfinished job."""
    ray = ray_module()
    init_ray(cfg, threads)
    log_dir.mkdir(parents=True, exist_ok=True)
    remote = ray.remote(_in_task).options(num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task, max_retries=1,
                                          retry_exceptions=True)
    refs = {remote.remote(fn, args, os.getcwd(), cfg.cpus_per_task, str(log_dir / f"task-{i}.log")): i
            for i, args in enumerate(tasks)}
    print(f"[ray] {n_jobs} {desc} in {len(tasks)} tasks × {cfg.cpus_per_task} CPU(s)"
          + (f", {cfg.gpus_per_task:g} GPU" if cfg.gpus_per_task else "") + f"; task logs: {log_dir}")
    failed: list[tuple[int, BaseException]] = []
    pending = list(refs)
    with tqdm(total=n_jobs, desc=desc, unit=desc.rstrip("s")) as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=5)
            for ref in ready:
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as e:  # the task's own error (after its retry), or a lost worker
                    failed.append((refs[ref], getattr(e, "cause", None) or e))
            bar.n = done()
            bar.refresh()
    if failed:
        i, err = failed[0]
        first = next((line for line in str(err).splitlines() if line.strip()), "")
        first = first if isinstance(err, TraitbenchError) else f"{type(err).__name__}: {first}"
        more = f" (+{len(failed) - 1} more failed tasks)" if len(failed) > 1 else ""
        raise TraitbenchError(f"{undone(i) or f'task {i}'} failed on Ray after one retry: {first}{more}; "
                              f"log: {log_dir / f'task-{i}.log'}")
