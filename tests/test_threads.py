"""A busy machine: commands take the cores other processes leave free, or TRAITBENCH_THREADS."""

import os

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


def test_busy_machine_lowers_the_threads(monkeypatch, restore_threads):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    torch.set_num_threads(2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.0, 0.5))
    note = threads.configure_threads()
    assert torch.get_num_threads() == 1 and "busy (load 1.9 on 2 cores): 1 of 2 threads" in note
    torch.set_num_threads(2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert threads.configure_threads() is None and torch.get_num_threads() == 2  # a quiet machine: untouched


def test_env_sets_the_threads(monkeypatch, restore_threads):
    monkeypatch.setenv(threads.ENV, "1")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert threads.configure_threads() is None and torch.get_num_threads() == 1
    monkeypatch.setenv(threads.ENV, "two")
    with pytest.raises(TraitbenchError, match="TRAITBENCH_THREADS must be a positive whole number"):
        threads.configure_threads()


def test_bad_env_is_a_one_line_cli_error(monkeypatch, capsys, restore_threads):
    monkeypatch.setenv(threads.ENV, "0")
    assert main(["probe", "--set", "teacher.model=tiny-llama"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("traitbench: error: TRAITBENCH_THREADS") and len(err.strip().splitlines()) == 1
