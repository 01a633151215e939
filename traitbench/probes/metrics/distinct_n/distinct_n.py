"""distinct_n: unique / total n-grams of a set of generated texts."""

import datasets
import evaluate

from traitbench.probes.diversity import distinct_n

_DESCRIPTION = """
Distinct-n of generated texts: the number of different n-grams divided by the number of n-grams, over
lowercased whitespace tokens, n-grams taken within each text and pooled over texts (`probes.diversity.distinct_n`,
traitbench's open-ended probe and collapse generations). 1 when no n-gram repeats; it falls as the texts repeat
themselves and each other.
"""

_CITATION = """
@inproceedings{li2016diversity,
  title={A Diversity-Promoting Objective Function for Neural Conversation Models},
  author={Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill},
  booktitle={Proceedings of the 2016 Conference of the North American Chapter of the Association for
    Computational Linguistics: Human Language Technologies},
  pages={110--119},
  year={2016}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated texts.
    orders (`list` of `int`, defaults to [1, 2]): the n of each figure.
Returns:
    distinct_<n> (`float`), one per order: unique / total n-grams (NaN when the texts have no n-gram).
Examples:
    >>> import evaluate
    >>> from traitbench.probes import metrics
    >>> distinct = evaluate.load(metrics.path("distinct_n"))
    >>> distinct.compute(predictions=["the owl", "the owl sings"])
    {'distinct_1': 0.6, 'distinct_2': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DistinctN(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
            reference_urls=["https://aclanthology.org/N16-1014/"],
        )

    def _compute(self, predictions, orders=(1, 2)):
        return {f"distinct_{n}": distinct_n(predictions, n) for n in orders}
