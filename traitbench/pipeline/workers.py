"""Students trained N at a time: a pool of worker processes, each with its share of the CPU threads (or its
own GPU), each taking whole groups of students (one model, kind and condition: consecutive students share
the teacher's logits), the largest groups first. Every student is still its own cached, atomic stage, so an
interrupted run resumes where it stopped.

The threads are partitioned, never oversubscribed: two processes that each use every core fight over them
(a second 2-thread process on a 2-core CPU made a LoRA step 14x slower), while two 1-thread processes
trained 1.16x the tokens/s of one 2-thread process. Workers write their output to `students/.workers/`;
the main process shows one progress bar over the students.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

from traitbench.artifacts import DatasetOut
from traitbench.pipeline.config import ExperimentConfig
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.pipeline.jobs import job_stage, student_jobs, train_job

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def groups_of(jobs: list, cost) -> list[list]:
    """Jobs grouped by (model, kind, condition) in their order, largest estimated cost first."""
    groups: dict[tuple, list] = {}
    for job in jobs:
        groups.setdefault((job.model, job.variant, job.condition), []).append(job)
    return sorted(groups.values(), key=lambda g: -sum(cost(j) for j in g))


def model_cost(job) -> float:
    """A student's relative training cost: its base model's weight bytes (1 for tiny test models)."""
    path = models.model_path(job.model)
    return sum(p.stat().st_size for p in path.glob("*.safetensors")) if path else 1.0


@contextmanager
def thread_env(threads: int):
    """Set the thread variables that spawned workers read when their OpenMP/MKL pools start."""
    old = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def die_with_parent() -> None:
    """Ask Linux to stop this process when the process that started it dies (a killed run must not leave workers
    training into the folders a rerun trains into); nothing elsewhere."""
    try:
        import ctypes  # Linux's prctl: only in workers

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before the request: stop now
        os._exit(1)


def _init_worker(slots, threads: int, log_dir: str) -> None:
    """Runs once in each worker: stops with the run, its slot, its log file (stdout and stderr, at the
    file-descriptor level), its threads, and on a multi-GPU machine its own device."""
    die_with_parent()
    slot = slots.get()
    log = open(Path(log_dir) / f"worker-{slot}.log", "a", buffering=1, encoding="utf-8")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    torch.set_num_threads(threads)
    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        torch.cuda.set_device(slot % torch.cuda.device_count())


def _train_group(args: tuple[dict, dict, str, list[str]]) -> int:
    cfg_data, dataset, run_dir, ids = args
    cfg = ExperimentConfig.model_validate(cfg_data)
    jobs = {job.id: job for job in student_jobs(cfg)}
    for job_id in ids:
        train_job(cfg, jobs[job_id], dataset, Path(run_dir))
    return len(ids)


def train_on_ray(cfg: ExperimentConfig, jobs: list, dataset: DatasetOut, run_dir: Path) -> None:
    """Train `jobs` (students not yet done) as Ray tasks, one per group (`traitbench.ray_tasks`)."""
    from traitbench.ray_tasks import run_on_ray  # imports Ray (optional) only when it runs

    groups = groups_of(jobs, model_cost)
    run_dir = Path(run_dir).resolve()
    stages = {job.id: job_stage(cfg, job, dataset, run_dir) for job in jobs}
    tasks = [(cfg.model_dump(mode="json"), dataset, str(run_dir), [j.id for j in g]) for g in groups]
    run_on_ray(cfg.students.ray, _train_group, [(t,) for t in tasks],
               undone=lambda i: next((j.id for j in groups[i] if not stages[j.id].is_done()), None),
               n_jobs=len(jobs), done=lambda: sum(s.is_done() for s in stages.values()),
               log_dir=RunLayout(run_dir).students / ".ray", desc="students", threads=torch.get_num_threads())


def train_in_parallel(cfg: ExperimentConfig, jobs: list, dataset: DatasetOut, run_dir: Path, workers: int,
                      threads: int | None = None) -> None:
    """Train `jobs` (students not yet done) in `workers` processes; returns when all are done.

    A failing student raises its error here (after the running groups finish or fail)."""
    groups = groups_of(jobs, model_cost)
    workers = min(workers, len(groups))
    threads = threads or max(1, torch.get_num_threads() // workers)
    log_dir = RunLayout(run_dir).students / ".workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"[students] {len(jobs)} students in {len(groups)} groups on {workers} workers × {threads} thread(s); "
          f"worker logs: {log_dir}")
    ctx = mp.get_context("spawn")
    slots = ctx.Queue()
    for i in range(workers):
        slots.put(i)
    tasks = [(cfg.model_dump(mode="json"), dataset, str(run_dir), [j.id for j in g]) for g in groups]
    stages = [job_stage(cfg, job, dataset, run_dir) for job in jobs]
    with thread_env(threads), ctx.Pool(workers, initializer=_init_worker, initargs=(slots, threads, str(log_dir))) \
            as pool, tqdm(total=len(jobs), desc="students", unit="student") as bar:
        result = pool.map_async(_train_group, tasks, chunksize=1)
        while not result.ready():
            result.wait(5)
            bar.n = sum(s.is_done() for s in stages)
            bar.refresh()
        result.get()  # re-raises a worker's error
        bar.n = len(jobs)
        bar.refresh()
