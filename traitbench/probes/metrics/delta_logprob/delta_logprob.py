"""delta_logprob: mean per-question difference of log P(trait word) between a model and a reference model."""

import datasets
import evaluate

from traitbench.stats import paired_delta

_DESCRIPTION = """
Δlog P of the trait word: per question, the log probability (nats) that a model answers with the trait word
minus the same for a reference model (the base model, or the control student), averaged over questions, with
a paired percentile bootstrap 95% interval that resamples questions (2,000 resamples) and a two-sided paired
t-test p-value (`probes.stats.paired_delta`, as traitbench's summary reports it). The per-question log P
are the probe's `trait_logprob.per_question` (`probes.logprob.trait_logprob`).
"""

_CITATION = """
@book{efron1993introduction,
  title={An Introduction to the Bootstrap},
  author={Efron, Bradley and Tibshirani, Robert J.},
  publisher={Chapman \\& Hall},
  year={1993}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): per question, log P(trait word) under the model.
    references (`list` of `float`): per question (the same questions, in the same order), log P(trait word)
        under the reference model.
    seed (`int`, defaults to 0): seed of the bootstrap.
Returns:
    delta (`float`): mean over questions of predictions − references (NaN with no questions).
    ci_low (`float`), ci_high (`float`): paired bootstrap 95% interval of the mean difference.
    n (`int`): questions.
    p_value (`float`): two-sided paired t-test p (NaN with < 2 questions or no variation).
Examples:
    >>> import evaluate
    >>> from traitbench.probes import metrics
    >>> delta_logprob = evaluate.load(metrics.path("delta_logprob"))
    >>> r = delta_logprob.compute(predictions=[-1.0, -2.0, -0.5], references=[-1.5, -2.5, -1.5])
    >>> round(r["delta"], 3), r["n"]
    (0.667, 3)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DeltaLogprob(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references, seed=0):
        d = paired_delta(predictions, references, seed=seed)
        return {"delta": d.delta, "ci_low": d.lo, "ci_high": d.hi, "n": d.n, "p_value": d.p_value}
