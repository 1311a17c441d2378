"""The sweep's recommendation: the budget it suggests relaxing must admit the variant it names."""
import pytest

from edgelite.sweep import pareto
from edgelite.sweep.run import Row


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


@pytest.mark.tensorflow  # the sweep and its chart (matplotlib) are the convert extra's
def test_the_report_is_written_whole_and_never_through_a_symlink(tmp_path):
    from edgelite.cli.report import write_all
    from edgelite.converters.errors import ConversionError
    from edgelite.sweep.run import SweepReport
    rows = [_row(), _row(variant="fp16", file_bytes=2000, median_ms=2.0, quality=40.0, snr_db=40.0)]
    pareto.mark(rows)
    report = SweepReport(rows, pareto.recommend(rows, {}), {}, "model.keras", str(tmp_path))
    files = write_all(report, tmp_path)
    assert set(files) == {"json", "csv", "md", "png"}
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report.csv").read_text().splitlines()[0].startswith("variant,")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "report.md").unlink()
    (tmp_path / "report.md").symlink_to(victim)
    with pytest.raises(ConversionError, match="is a symlink"):
        write_all(report, tmp_path)
    assert victim.read_text() == "keep me"
