"""A killed run leaves no student worker behind: workers stop when the process that started them dies (a
leftover worker would keep training into the folders a rerun trains into)."""

import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import pytest

from traitbench.pipeline.workers import die_with_parent


def _worker(q) -> None:
    die_with_parent()
    q.put(os.getpid())
    time.sleep(120)


def _run(q) -> None:  # stands for the traitbench process that starts the workers
    p = mp.get_context("spawn").Process(target=_worker, args=(q,))
    p.start()
    p.join()


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_worker_stops_when_its_run_is_killed():
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    run = ctx.Process(target=_run, args=(q,))
    run.start()
    worker = q.get(timeout=120)
    assert _alive(worker)
    run.kill()
    run.join()
    deadline = time.monotonic() + 20
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)
