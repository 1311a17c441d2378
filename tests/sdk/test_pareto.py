"""The sweep's recommendation: the budget it suggests relaxing must admit the variant it names."""
import pytest

from edgelite import pareto
from edgelite.sweep import Row


def _row(**figures) -> Row:
    base = dict(variant="int8", threads=1, file_bytes=1000, median_ms=1.0, task="raw", quality=30.0, snr_db=30.0,
                drop_points=None)
    return Row(**{**base, **figures})


@pytest.mark.parametrize("key, budget, figures", [
    ("min_output_snr", 20.0, dict(snr_db=18.876, quality=18.876)),   # a minimum: the suggestion rounds down
    ("max_size_kb", 0.5, dict(file_bytes=1264)),                      # 1.234 KB: a maximum rounds up
    ("max_latency_ms", 0.5, dict(median_ms=0.7891)),
    ("max_accuracy_drop", 0.5, dict(task="classify", quality=0.9, drop_points=1.2345)),
])
def test_the_budget_suggested_for_relaxing_admits_the_variant(key, budget, figures):
    row = _row(**figures)
    recommendation = pareto.recommend([row], {key: budget})
    relaxed = recommendation["relax"][key]
    assert not pareto._violations(row, {key: relaxed}), recommendation
    assert f"to {relaxed:.2f}" in recommendation["why"]
