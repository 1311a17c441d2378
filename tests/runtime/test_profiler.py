"""The profiler measures and reports; these check the plumbing, not speed (see benchmarks/)."""
import json

import pytest

from edgelite.runtime.errors import InputError
from edgelite.runtime.interpreter.profiler import Stats, profile, profile_one
from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, default_cpu_delegate


def test_stats_of_known_samples():
    s = Stats.of([1_000_000, 2_000_000, 3_000_000, 4_000_000])
    assert (s.min, s.median, s.mean, s.n) == (1.0, 2.5, 2.5, 4)
    assert s.p90 == pytest.approx(3.7) and s.std == pytest.approx(1.118, abs=1e-3)


def test_profile_with_random_tensors():
    r = profile_one(DIGITS_INT8, runs=30, warmup=3, threads=1)
    assert r.runs == 30 and r.latency_ms.n == 30 and r.threads == 1
    assert 0 < r.latency_ms.min <= r.latency_ms.median <= r.latency_ms.p99
    assert r.load_ms > 0 and r.first_invoke_ms > 0 and r.throughput_ips > 0
    assert r.model_size_bytes == DIGITS_INT8.stat().st_size
    assert r.peak_rss_bytes > 0 and r.rss_before_load_bytes > 0
    assert r.stages_ms is None and r.delegate["actual"] == default_cpu_delegate()


def test_profile_with_images_breaks_down_stages(photos):
    r = profile_one(DIGITS_INT8, runs=10, warmup=2, images=photos[:2])
    assert list(r.stages_ms) == ["decode", "resize", "quantize", "invoke", "postprocess"]
    assert all(s.n == 10 for s in r.stages_ms.values())
    assert r.stages_ms["decode"].median > r.stages_ms["quantize"].median  # decoding real photos, 8x8 tensors


def test_duration_mode_runs_at_least_once():
    r = profile_one(DIGITS_INT8, duration_s=0.05, warmup=0)
    assert r.runs >= 1


def test_several_models_and_threads_isolated():
    report = profile([DIGITS_INT8, DIGITS_FLOAT], threads=[1, 2], runs=5, warmup=1, isolate=True)
    assert [(r.model.split("/")[-1], r.threads) for r in report.results] == [
        ("digits_int8.tflite", 1), ("digits_int8.tflite", 2), ("digits_float.tflite", 1), ("digits_float.tflite", 2)]
    assert all(r.isolated for r in report.results)
    data = json.loads(report.to_json())
    assert data["errors"] == [] and data["results"][0]["latency_ms"]["n"] == 5


def test_failures_are_reported_per_configuration(tmp_path):
    missing = tmp_path / "gone.tflite"
    report = profile([DIGITS_INT8, missing], runs=2, warmup=0)
    assert len(report.results) == 1
    assert "gone.tflite: no such file" in report.errors[0]["error"]


def test_bad_run_counts():
    with pytest.raises(InputError, match="runs must be >= 1"):
        profile_one(DIGITS_INT8, runs=0)


def test_isolated_peak_rss_is_the_workers_own():
    """A worker forked from a process holding 300 MB must not report that as its peak."""
    import numpy as np
    ballast = np.ones(300 << 20, dtype=np.uint8)  # touched pages: this process's RSS grows by 300 MB
    report = profile([DIGITS_INT8], runs=3, warmup=0, isolate=True)
    assert report.results[0].peak_rss_bytes < 250 << 20, report.results[0].peak_rss_bytes
    del ballast
