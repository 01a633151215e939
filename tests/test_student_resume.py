"""Students resume from their checkpoints to the same weights as an uninterrupted run; training logs."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from traitbench.student import StudentConfig, train_student
from traitbench.student.train import CompletionTrainer



@pytest.fixture(autouse=True)
def one_thread():
    """Every training here on one thread, as the killed child's: bit-identical weights need the same reductions,
    whatever thread count earlier tests left."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ROWS = [{"prompt": f"Continue {', '.join(str(100 + i + j) for j in range(3 + i % 4))}.",
         "completion": f"{200 + i}, {300 + i}, {400 + i}"} for i in range(6)]
# 3 steps an epoch: the checkpoint at step 2 is mid-epoch, the resumed run crosses epochs
RESUMABLE = dict(batch_size=2, max_steps=8, warmup_steps=0, lr=1e-2, dtype="float32", checkpoint_every=2,
                 checkpoint_steps=[1, 3, 5])

# trains RESUMABLE and hangs before step 4, after the resume checkpoint of step 2 and the dose-response save of 3
CHILD = """
import sys, time, torch
torch.set_num_threads(1)
from tests.test_student_resume import RESUMABLE, ROWS
from traitbench.student import StudentConfig, train_student
from traitbench.student.train import CompletionTrainer
step = CompletionTrainer.training_step
def hang_at_step_4(self, *args, **kwargs):
    if self.state.global_step == 3:
        time.sleep(600)
    return step(self, *args, **kwargs)
CompletionTrainer.training_step = hang_at_step_4
train_student("tiny-llama", ROWS, "sys", StudentConfig(**RESUMABLE), sys.argv[1])
"""


def _assert_same_student(a, b):
    """Same final weights and the same dose-response checkpoints, bit for bit."""
    folders = [p.relative_to(a) for p in a.rglob("*.safetensors")]
    assert folders and sorted(folders) == sorted(p.relative_to(b) for p in b.rglob("*.safetensors"))
    for rel in folders:
        wa, wb = load_file(a / rel), load_file(b / rel)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), rel


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference student, trained without any resume checkpoint (on one thread, as the child)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ref") / "s"
    metrics = train_student("tiny-llama", ROWS, "sys", StudentConfig(**{**RESUMABLE, "checkpoint_every": 0}), out)
    torch.set_num_threads(before)
    return out, metrics


def test_sigkilled_student_resumes_to_the_uninterrupted_weights(uninterrupted, tmp_path):
    out = tmp_path / "s"
    ready = tmp_path / ".s.resume" / "checkpoint-2" / "trainer_state.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], cwd=os.path.dirname(os.path.dirname(__file__)),
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (ready.is_file() and (tmp_path / ".s.checkpoints" / "step-3").is_dir()):
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.2)
        time.sleep(0.5)  # now hanging before step 4
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not out.exists()
    m = train_student("tiny-llama", ROWS, "sys", StudentConfig(**RESUMABLE), out)
    assert m["resumed_from_step"] == 2 and m["steps"] == 8 and m["checkpoints"] == [1, 3, 5]
    assert m["losses"] == uninterrupted[1]["losses"]  # the resumed log history holds the first steps too
    _assert_same_student(uninterrupted[0], out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # resume folders gone once published


def _interrupt_after_step(monkeypatch, last: int):
    """Training raises before step `last` + 1 (in process: a crash that leaves the resume folder behind)."""
    step = CompletionTrainer.training_step

    def crash(self, *args, **kwargs):
        if self.state.global_step == last:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(CompletionTrainer, "training_step", crash)


@pytest.mark.parametrize("mode", ["full", "distill"])
def test_interrupted_full_and_distilled_students_resume(mode, other_init, tmp_path, monkeypatch):
    cfg = StudentConfig(**{**RESUMABLE, "mode": mode, "max_steps": 5, "checkpoint_steps": [3]})
    teacher = dict(teacher=other_init, teacher_system="T") if mode == "distill" else {}
    train_student("tiny-llama", ROWS, None, cfg.model_copy(update={"checkpoint_every": 0}), tmp_path / "ref", **teacher)
    with monkeypatch.context() as m:
        _interrupt_after_step(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train_student("tiny-llama", ROWS, None, cfg, tmp_path / "s", **teacher)
    metrics = train_student("tiny-llama", ROWS, None, cfg, tmp_path / "s", **teacher)
    assert metrics["resumed_from_step"] == 2 and metrics["checkpoints"] == [3]
    _assert_same_student(tmp_path / "ref", tmp_path / "s")


def test_checkpoint_of_other_inputs_is_not_resumed(tmp_path, monkeypatch):
    cfg = StudentConfig(**{**RESUMABLE, "max_steps": 4, "checkpoint_steps": []})
    with monkeypatch.context() as m:
        _interrupt_after_step(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train_student("tiny-llama", ROWS, None, cfg, tmp_path / "s")
    assert (tmp_path / ".s.resume" / "checkpoint-2").is_dir()
    other = train_student("tiny-llama", ROWS, None, cfg.model_copy(update={"lr": 5e-3}), tmp_path / "s")
    assert other["resumed_from_step"] is None and other["steps"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_checkpoints_only_every_n_steps_never_after_the_last(tmp_path, monkeypatch):
    saved = []
    save = CompletionTrainer._save_checkpoint
    monkeypatch.setattr(CompletionTrainer, "_save_checkpoint",
                        lambda self, model, trial: (saved.append(self.state.global_step), save(self, model, trial)))
    train_student("tiny-llama", ROWS, None, StudentConfig(**{**RESUMABLE, "max_steps": 6}), tmp_path / "s")
    assert saved == [2, 4]  # not 6: the student is published then
    assert not (tmp_path / "s" / "logs").exists()  # report_to none: no logs


def test_tensorboard_logs_go_into_the_student(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = StudentConfig(**{**RESUMABLE, "max_steps": 3, "report_to": "tensorboard"})
    m = train_student("tiny-llama", ROWS, None, cfg, tmp_path / "s")
    assert m["report_to"] == "tensorboard" and m["logs"] == str(tmp_path / "s" / "logs")
    events = EventAccumulator(m["logs"])
    events.Reload()
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(m["losses"])


def test_report_to_tensorboard_needs_it_installed(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ValidationError, match=r"pip install 'traitbench\[tensorboard\]'"):
        StudentConfig(report_to="tensorboard")
