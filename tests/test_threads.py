"""A busy machine: commands take the cores other processes leave free, or TRAITBENCH_THREADS."""

import os
import subprocess
import sys
import time

import pytest
import torch

from traitbench import threads
from traitbench.cli import main
from traitbench.errors import TraitbenchError


def test_free_cores():
    assert threads.free_cores(2, 0.1) == 2 and threads.free_cores(2, 1.2) == 1 and threads.free_cores(2, 5.0) == 1
    assert threads.free_cores(16, 3.6) == 12 and threads.free_cores(4, 0.0) == 4


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


SPIN = [sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < {s}: pass"]


def _spin(seconds: float) -> list[str]:
    return [a.replace("{s}", str(seconds)) for a in SPIN]


def _quiet_enough() -> float:
    """Other processes' use now; skips when the machine is too busy for a spinning process to show."""
    busy = threads.busy_cores()
    if busy is None:
        pytest.skip("no /proc/stat")
    if busy > (os.cpu_count() or 1) - 1.3:
        pytest.skip(f"this machine is busy (other processes use {busy:.1f} cores): nothing to measure against")
    return busy


def test_a_finished_busy_child_does_not_lower_the_threads(monkeypatch, restore_threads):
    """What ran just before (a venv install, a model conversion) is not counted: only the CPU use of now."""
    monkeypatch.delenv(threads.ENV, raising=False)
    before = _quiet_enough()
    subprocess.run(_spin(1.5), check=True)  # one core busy for 1.5 s, then done
    assert threads.busy_cores() < before + 0.5
    if before < 0.4:  # a quiet machine: every thread
        torch.set_num_threads(min(2, os.cpu_count()))
        assert threads.configure_threads() is None and torch.get_num_threads() == min(2, os.cpu_count())


def test_a_concurrent_busy_process_lowers_the_threads(monkeypatch, restore_threads):
    monkeypatch.delenv(threads.ENV, raising=False)
    before = _quiet_enough()
    spinner = subprocess.Popen(_spin(10))
    try:
        time.sleep(0.3)
        busy = threads.busy_cores()
        monkeypatch.setattr(threads, "busy_cores", lambda: busy)
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        torch.set_num_threads(2)
        note = threads.configure_threads()
    finally:
        spinner.kill()
        spinner.wait()
    assert busy > before + 0.6
    if before < 0.4:  # a quiet machine: the spinner takes one of two cores
        assert torch.get_num_threads() == 1 and "busy (other processes use 1." in note and "1 of 2 threads" in note


def test_without_proc_stat_the_load_average_decides(monkeypatch, restore_threads):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "busy_cores", lambda: None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    torch.set_num_threads(2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.0, 0.5))
    assert "1 of 2 threads" in threads.configure_threads() and torch.get_num_threads() == 1
    torch.set_num_threads(2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert threads.configure_threads() is None and torch.get_num_threads() == 2  # a quiet machine: untouched


def test_env_sets_the_threads(monkeypatch, restore_threads):
    monkeypatch.setenv(threads.ENV, "1")
    assert threads.configure_threads() is None and torch.get_num_threads() == 1
    monkeypatch.setenv(threads.ENV, "two")
    with pytest.raises(TraitbenchError, match="TRAITBENCH_THREADS must be a positive whole number"):
        threads.configure_threads()


def test_bad_env_is_a_one_line_cli_error(monkeypatch, capsys, restore_threads):
    monkeypatch.setenv(threads.ENV, "0")
    assert main(["probe", "--set", "teacher.model=tiny-llama"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("traitbench: error: TRAITBENCH_THREADS") and len(err.strip().splitlines()) == 1
