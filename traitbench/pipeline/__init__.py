"""The transmission experiment's pipeline: its config (config.py), its stages in order (run.py), each stage's
cached work (teacher.py, numbers.py, dataset.py, students.py with jobs.py and workers.py, probes.py), then the
summary with the seed-level verdicts (summary.py, verdicts.py)."""
