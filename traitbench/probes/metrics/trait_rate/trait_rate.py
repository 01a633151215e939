"""trait_rate: the share of answers that name the trait, with its Wilson score 95% interval."""

import datasets
import evaluate

from traitbench.probes.scoring import mentions
from traitbench.stats import Rate

_DESCRIPTION = """
The trait rate of a set of sampled answers: the share k / n that name the trait word, with the Wilson score
95% interval (traitbench's probe rate, `probes.stats.Rate`). Answers are scored by `probes.scoring.mentions`:
the trait as a whole word, any case, singular or plural ("Owls!" names owl, "bowl" does not); match flags
that were scored elsewhere are counted as given.
"""

_CITATION = """
@article{wilson1927probable,
  title={Probable inference, the law of succession, and statistical inference},
  author={Wilson, Edwin B.},
  journal={Journal of the American Statistical Association},
  volume={22},
  number={158},
  pages={209--212},
  year={1927}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`, or `list` of `bool`): free answers, or match flags (True: the answer names
        the trait). At least one.
    trait (`str`): the trait word ("owl", "sea turtle"); needed with answers, not allowed with match flags.
Returns:
    rate (`float`): k / n.
    ci_low (`float`), ci_high (`float`): the Wilson score 95% interval of the rate.
    k (`int`): answers that name the trait.
    n (`int`): answers.
Examples:
    >>> import evaluate
    >>> from traitbench.probes import metrics
    >>> trait_rate = evaluate.load(metrics.path("trait_rate"))
    >>> r = trait_rate.compute(predictions=["Owls!", "The cat.", "an owl", "bowl"], trait="owl")
    >>> r["k"], r["n"], r["rate"]
    (2, 4, 0.5)
    >>> trait_rate.compute(predictions=[True, False, False, False])["rate"]
    0.25
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TraitRate(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[datasets.Features({"predictions": datasets.Value("string")}),
                      datasets.Features({"predictions": datasets.Value("bool")})],
            reference_urls=["https://en.wikipedia.org/wiki/Binomial_proportion_confidence_interval"],
        )

    def _compute(self, predictions, trait=None):
        answers = isinstance(predictions[0], str)
        if answers and trait is None:
            raise ValueError("trait_rate: answers need `trait`, the word to look for")
        if not answers and trait is not None:
            raise ValueError("trait_rate: `trait` scores answers; these predictions are match flags")
        r = Rate.from_hits([mentions(a, trait) for a in predictions] if answers else predictions)
        return {"rate": r.rate, "ci_low": r.ci95[0], "ci_high": r.ci95[1], "k": r.k, "n": r.n}
