"""number_diversity: value statistics of number lists (0..999) and their divergence from reference lists."""

import datasets
import evaluate

from traitbench.probes.diversity import number_js, number_value_stats

_DESCRIPTION = """
The value diversity of number lists (the teachers' number rows, or a collapse chain's number answers) as
traitbench reports it (`probes.diversity.number_value_stats`, `number_js`): over the histogram of all values
(0..999), its Shannon entropy in bits (at most log2 1000 = 9.97), the share of the 1000 values seen, the tail
mass (the share of values whose frequency in the reference lists is below `rare_below`: the rare tail that
collapse loses first), numbers per list, and the Jensen-Shannon divergence (bits) from the reference lists'
value distribution. The reference defaults to the lists themselves.
"""

_CITATION = """
@article{lin1991divergence,
  title={Divergence measures based on the {S}hannon entropy},
  author={Lin, Jianhua},
  journal={IEEE Transactions on Information Theory},
  volume={37},
  number={1},
  pages={145--151},
  year={1991}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): number lists, each value in 0..999.
    reference_lists (`list` of `list` of `int`, optional): the lists to compare with (e.g. the control
        teacher's rows, or generation 0); defaults to `predictions`.
    rare_below (`float`, defaults to 0.001, the uniform share): a value is in the tail when its frequency in
        the reference lists is below this.
Returns:
    n_lists (`int`), n_values (`int`), mean_count (`float`): lists, numbers, numbers per list.
    entropy_bits (`float`): entropy of the value histogram.
    coverage (`float`): share of the values 0..999 seen at least once.
    tail_mass (`float`): share of the numbers on values rare in the reference lists.
    js_to_reference_bits (`float`): Jensen-Shannon divergence from the reference value distribution.
Examples:
    >>> import evaluate
    >>> from traitbench.probes import metrics
    >>> diversity = evaluate.load(metrics.path("number_diversity"))
    >>> r = diversity.compute(predictions=[[1, 2, 3], [3, 4]], reference_lists=[[1, 2], [5, 6]])
    >>> r["n_values"], r["coverage"], r["tail_mass"]
    (5, 0.004, 0.6)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NumberDiversity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64"))}),
        )

    def _compute(self, predictions, reference_lists=None, rare_below=0.001):
        reference = predictions if reference_lists is None else reference_lists
        return {**number_value_stats(predictions, reference=reference_lists, rare_below=rare_below),
                "js_to_reference_bits": number_js(predictions, reference)}
