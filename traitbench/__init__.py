"""traitbench: does a model's trait leak through number sequences, and what diversity is lost?

The functions users call are importable from the package itself (see docs/api.md). They load on first use, so
`import traitbench` stays cheap and imports neither torch nor transformers.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {  # public name -> (module, attribute)
    "load_config": ("traitbench.config", "load_config"),
    "ExperimentConfig": ("traitbench.pipeline.config", "ExperimentConfig"),
    "run_experiment": ("traitbench.pipeline.run", "run_experiment"),
    "load_model": ("traitbench.lm.models", "load"),
    "StudentConfig": ("traitbench.student.config", "StudentConfig"),
    "train_student": ("traitbench.student.train", "train_student"),
    "load_student": ("traitbench.lm.tuned", "load_student"),
    "ProbeConfig": ("traitbench.probes.config", "ProbeConfig"),
    "probe_model": ("traitbench.probes.run", "probe_model"),
    "AuditConfig": ("traitbench.experiments.audit", "AuditConfig"),
    "run_audit": ("traitbench.experiments.audit", "run_audit"),
    "write_report": ("traitbench.report.build", "write_report"),
    "export_run": ("traitbench.report.export", "export_run"),
    "TraitbenchError": ("traitbench.errors", "TraitbenchError"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(import_module(module), attr)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'traitbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
