"""students.backend: ray — every group of students, and of probed students, a task on a local Ray: the same
summary as the local worker pool, cached jobs skipped, a failing task retried once and reported by student id."""

import json

import pytest

from traitbench.pipeline import run as pipeline
from traitbench.errors import TraitbenchError

from test_transmission import FAST_PROBES, _cfg, dataset  # noqa: F401 (the fixture)

ray = pytest.importorskip("ray", reason="the ray extra: pip install 'traitbench[ray]'")

TINY = ["students.models=[tiny-llama]", "students.seeds=[0, 1]",
        "students.train={max_steps: 2, batch_size: 3, warmup_steps: 0, dtype: float32, lr: 0.01, checkpoint_steps: [1]}",
        "students.variants=[{name: distill, train: {mode: distill}}]"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _summary(path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.slow
def test_ray_gives_the_local_pools_summary(tmp_path, dataset, local_ray, capsys):  # noqa: F811
    pool = pipeline.run_experiment(_cfg(tmp_path / "pool", *TINY, "students.workers=2"))
    on_ray = pipeline.run_experiment(_cfg(tmp_path / "ray", *TINY, "students.backend=ray"))
    assert _summary(on_ray) == _summary(pool)  # every number, the verdicts and the dose-response included
    run = tmp_path / "ray/t"
    assert len(list((run / "students/.ray").glob("task-*.log"))) == 4  # 2 kinds × 2 conditions
    assert len(list((run / "probes/.ray").glob("task-*.log"))) == 4
    assert "[ray] 8 students in 4 tasks × 1 CPU(s)" in capsys.readouterr().out
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["students"]["backend"] == "ray"
    pipeline.run_experiment(_cfg(tmp_path / "ray", *TINY, "students.backend=ray"))  # all cached: nothing sent
    assert "[ray]" not in capsys.readouterr().out


def test_a_failing_task_is_retried_once_then_named(tmp_path, local_ray):
    from traitbench.pipeline.config import RayConfig
    from traitbench.ray_tasks import run_on_ray

    marker = tmp_path / "tries"

    def flaky(path):  # fails on its first try only
        tries = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(tries))
        if tries == 1:
            raise RuntimeError("lost on the first try")

    done = []
    run_on_ray(RayConfig(), flaky, [(marker,)], undone=lambda i: None, n_jobs=1, done=lambda: len(done),
               log_dir=tmp_path / "logs", desc="students", threads=1)
    assert marker.read_text() == "2"

    def broken(path):
        path.write_text(str(int(path.read_text()) + 1))
        raise ValueError("bad weights\nsecond line")

    marker.write_text("0")
    with pytest.raises(TraitbenchError) as e:
        run_on_ray(RayConfig(), broken, [(marker,)], undone=lambda i: "tiny-llama/lora/trait/seed1", n_jobs=1,
                   done=lambda: 0, log_dir=tmp_path / "logs", desc="students", threads=1)
    assert marker.read_text() == "2"  # tried twice
    assert str(e.value).startswith("tiny-llama/lora/trait/seed1 failed on Ray after one retry: ValueError: bad weights")
    assert "\n" not in str(e.value)


def test_without_ray_installed_a_one_line_error(monkeypatch):
    import builtins

    from traitbench.ray_tasks import ray_module

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "ray" else real(name, *a, **k))
    with pytest.raises(TraitbenchError, match=r"pip install 'traitbench\[ray\]'"):
        ray_module()
