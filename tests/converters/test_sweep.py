"""`edgelite sweep` on real digit scans: variants, reports, Pareto, budgets, resuming, failures."""
import json
import os

import pytest
from click.testing import CliRunner

from edgelite.cli.commands import main
from edgelite.converters.errors import ConversionError
from edgelite.sweep import run as sweep_mod

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def swept(tmp_path_factory, digits_keras, digit_folders):
    train, evaluation = digit_folders
    out = tmp_path_factory.mktemp("sweep")
    report = sweep_mod.sweep(digits_keras, calibration=train, eval_data=evaluation, output_dir=out,
                             variants=["fp32", "int8", "prune50-int8"], threads=[1, 2], train_data=train, epochs=1,
                             runs=20, warmup=2, budgets={"max_accuracy_drop": 1.0})
    return report, out


def test_every_variant_is_verified_and_profiled(swept):
    report, _ = swept
    assert [(r.variant, r.threads) for r in report.rows] == [
        ("fp32", 1), ("fp32", 2), ("int8", 1), ("int8", 2), ("prune50-int8", 1), ("prune50-int8", 2)]
    for r in report.rows:
        assert r.error is None and r.median_ms > 0 and r.p90_ms >= r.median_ms and r.first_invoke_ms > 0
        assert r.peak_rss_bytes > 0 and 0 < r.gzip_bytes < r.file_bytes and r.top1 >= 0.9 and r.agreement >= 0.9
    fp32, int8 = report.rows[0], report.rows[2]
    assert int8.file_bytes < 0.35 * fp32.file_bytes and fp32.drop_points == pytest.approx(0.0, abs=0.3)


def test_reports_are_written(swept):
    report, out = swept
    for name in ("report.md", "report.json", "report.csv", "pareto.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "report.json").read_text())
    assert len(data["rows"]) == 6 and data["recommendation"]["choice"]
    md = (out / "report.md").read_text()
    assert "| prune50-int8 | 1 |" in md and "**Recommendation:**" in md
    import edgelite
    made = data["made"]  # what made the figures, so a report can be told apart from a later edgelite's or machine's
    assert made["edgelite"] == edgelite.__version__ and made["packages"]["tensorflow"] and made["cores"] >= 1
    assert f"Made by edgelite {edgelite.__version__} on {made['date']} (Python " in md
    assert (out / "report.csv").read_text().splitlines()[0].startswith("variant,threads,file_bytes")


def test_pareto_and_recommendation(swept):
    report, _ = swept
    assert any(r.pareto for r in report.rows)
    rec = report.recommendation
    chosen = next(r for r in report.rows if (r.variant, r.threads) == (rec["variant"], rec["threads"]))
    fitting = [r for r in report.rows if r.drop_points <= 1.0]
    assert chosen.median_ms == min(r.median_ms for r in fitting) and "the fastest of" in rec["why"]


def test_nothing_fits_says_which_budget_to_relax(swept):
    from edgelite.sweep.pareto import recommend
    report, _ = swept
    smallest = min(r.file_bytes for r in report.rows) / 1024
    rec = recommend(report.rows, {"max_size_kb": smallest / 2})
    assert rec["choice"] is None and "--max-size-kb" in rec["why"] and rec["relax"]["max_size_kb"] >= smallest


def test_resuming_reuses_unchanged_variants(swept, digits_keras, digit_folders):
    report, out = swept
    train, evaluation = digit_folders
    again = sweep_mod.sweep(digits_keras, calibration=train, eval_data=evaluation, output_dir=out,
                            variants=["int8", "prune50-int8"], threads=[1], train_data=train, epochs=2, runs=5, warmup=1)
    assert [(r.variant, r.reused) for r in again.rows] == [("int8", True), ("prune50-int8", False)]  # epochs changed


def test_a_failing_variant_is_reported_and_the_sweep_goes_on(tmp_path, digits_keras, digit_folders, monkeypatch):
    monkeypatch.setitem(sweep_mod.VARIANTS, "broken", {"quantize": "int4"})  # a stand-in for a converter failure
    train, evaluation = digit_folders
    report = sweep_mod.sweep(digits_keras, calibration=train, eval_data=evaluation, output_dir=tmp_path,
                             variants=["broken", "int8"], threads=[1], runs=5, warmup=1)
    broken, int8 = report.rows
    assert broken.error.startswith("conversion failed: --quantize 'int4' is not one of") and int8.measured


def test_eval_classes_must_match_the_model(tmp_path, digits_keras, digit_folders):
    import shutil
    train, evaluation = digit_folders
    few = tmp_path / "few"
    for c in "0123":
        shutil.copytree(evaluation / c, few / c)
    with pytest.raises(ConversionError, match=r"few: 4 class folders, but the model has 10 outputs"):
        sweep_mod.sweep(digits_keras, calibration=train, eval_data=few, output_dir=tmp_path / "o")
    with pytest.raises(ConversionError, match="the prune variants fine-tune on images: give --train-data DIR"):
        sweep_mod.sweep(digits_keras, calibration=train, eval_data=evaluation, output_dir=tmp_path / "o",
                        variants=["prune75-int8"])


def test_cli_sweep_json_and_exit_code(tmp_path, digits_keras, digit_folders, monkeypatch):
    train, evaluation = digit_folders
    result = CliRunner().invoke(main, ["sweep", str(digits_keras), "--calibration", str(train), "--eval-data",
                                       str(evaluation), "-o", str(tmp_path / "s"), "--variants", "int8",
                                       "--runs", "5", "--max-latency-ms", "1000", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["recommendation"]["variant"] == "int8"
    monkeypatch.setitem(sweep_mod.VARIANTS, "broken", {"quantize": "int4"})
    failed = CliRunner().invoke(main, ["sweep", str(digits_keras), "--calibration", str(train), "--eval-data",
                                       str(evaluation), "-o", str(tmp_path / "t"), "--variants", "broken"])
    assert failed.exit_code == 1 and "conversion failed" in failed.stdout  # nothing measured


def test_sweep_on_a_device_over_ssh(tmp_path, digits_keras, digit_folders, ssh_server):
    from edgelite.scale.remote import Remote
    train, evaluation = digit_folders
    device = Remote(ssh_server["target"], ssh_server["edgelite"], ssh_server["identity"], ssh_server["options"])
    report = sweep_mod.sweep(digits_keras, calibration=train, eval_data=evaluation, output_dir=tmp_path,
                             variants=["int8"], threads=[1], runs=5, warmup=1, remote=device)
    (row,) = report.rows
    assert row.measured and row.where == ssh_server["target"] and os.path.exists(tmp_path / "pareto.png")


def test_sweep_without_eval_data_holds_out_calibration_images_and_unlabelled_images_mean_agreement(
        tmp_path, digits_keras, digit_folders):
    """No --eval-data: each variant is verified on the calibration images held out, as convert does; a folder of
    images without class folders ranks by agreement with the float model instead of being refused."""
    train, evaluation = digit_folders
    held = sweep_mod.sweep(digits_keras, calibration=train, output_dir=tmp_path / "a", variants=["int8"], runs=5,
                           warmup=1)
    (row,) = held.rows
    assert row.error is None and row.top1 is None and row.agreement >= 0.9
    flat = tmp_path / "flat" / "only-one-subfolder"
    flat.mkdir(parents=True)
    for path in sorted(evaluation.rglob("*.png"))[:60]:
        (flat / f"{path.parent.name}-{path.name}").write_bytes(path.read_bytes())
    unlabelled = sweep_mod.sweep(digits_keras, calibration=train, eval_data=flat.parent, output_dir=tmp_path / "b",
                                 variants=["int8"], runs=5, warmup=1)
    (row,) = unlabelled.rows
    assert row.error is None and row.top1 is None and row.agreement >= 0.9


# -- the same sweep on a real Ray cluster (two nodes on loopback) ------------------------------------
def _cpu_seconds(proc) -> float:
    """User plus system CPU time of a /proc entry (fields 14 and 15 of its stat line, after the command name)."""
    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kill_once(title: str, killed: list, stop) -> None:
    """Kills (SIGKILL) the first process whose title is ``title`` (Ray names a worker by the task it runs) once it
    has spent 0.3 s of CPU under that title: mid-variant, whatever the machine's load. The task has then counted
    its attempt (a blocking call, no CPU) and is converting (over a second of CPU). A wall-clock delay of half a
    second raced the task's end once on a clean clone: the kill landed as the result went back, and nothing was
    retried."""
    import pathlib
    import signal
    seen: dict[int, float] = {}
    while not stop.is_set() and not killed:
        for proc in pathlib.Path("/proc").glob("[0-9]*"):
            try:
                if (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").startswith(title):
                    pid = int(proc.name)
                    seen.setdefault(pid, _cpu_seconds(proc))
                    if _cpu_seconds(proc) - seen[pid] >= 0.3:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
            except (OSError, ValueError, IndexError):
                continue
        stop.wait(0.05)


@pytest.fixture(scope="module")
def swept_on_ray(tmp_path_factory, digits_keras, digit_folders, ray_cluster):
    """The `swept` variants built on Ray, the int8 variant's worker killed once mid-build."""
    import threading
    train, evaluation = digit_folders
    out = tmp_path_factory.mktemp("sweep-ray")
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_once, args=("ray::edgelite-variant-int8", killed, stop))
    killer.start()
    events = []
    try:
        report = sweep_mod.sweep(digits_keras, calibration=train, eval_data=evaluation, output_dir=out,
                                 variants=["fp32", "int8", "prune50-int8"], threads=[1], train_data=train, epochs=1,
                                 runs=20, warmup=2, budgets={"max_accuracy_drop": 1.0}, ray_address=ray_cluster,
                                 on_event=events.append)
    finally:
        stop.set()
        killer.join()
    return report, out, killed, events


def test_a_sweep_on_ray_gives_the_local_figures(swept, swept_on_ray):
    local = {r.variant: r for r in swept[0].rows if r.threads == 1}
    ray_rows = {r.variant: r for r in swept_on_ray[0].rows}
    assert set(ray_rows) == set(local) and all(r.measured for r in ray_rows.values())
    for name in ("fp32", "int8"):  # the same conversion of the same model on the same images
        assert ray_rows[name].top1 == local[name].top1 and ray_rows[name].agreement == local[name].agreement
        assert abs(ray_rows[name].file_bytes - local[name].file_bytes) <= 256  # the record names other paths
    assert abs(ray_rows["prune50-int8"].top1 - local["prune50-int8"].top1) <= 0.03  # a fine-tune elsewhere
    assert all(r.built_on.startswith("ray:127.0.0.1") and r.where == "local" for r in ray_rows.values())
    assert swept_on_ray[0].recommendation["choice"].split(" @ ")[0] in ray_rows


def test_a_worker_killed_mid_variant_is_retried(swept_on_ray):
    report, _, killed, events = swept_on_ray
    assert killed, "the int8 variant's worker was never seen running"
    int8 = next(r for r in report.rows if r.variant == "int8")
    assert int8.measured and int8.attempts == 2
    assert [e["variant"] for e in events if e["event"] == "retried"] == ["int8"]
    assert {r.variant: r.attempts for r in report.rows if r.variant != "int8"} == {"fp32": 1, "prune50-int8": 1}


def test_a_sweep_run_again_on_ray_builds_only_what_is_missing(swept_on_ray, digits_keras, digit_folders,
                                                             ray_cluster):
    """From the command line, --jsonl: progress lines (variants reused, then the one built), then the report."""
    _, out, _, _ = swept_on_ray
    train, evaluation = digit_folders
    result = CliRunner().invoke(main, ["sweep", str(digits_keras), "--calibration", str(train), "--eval-data",
                                       str(evaluation), "--train-data", str(train), "--epochs", "1", "-o", str(out),
                                       "--variants", "fp32,int8,prune50-int8,dynamic", "--threads", "1",
                                       "--runs", "5", "--ray", ray_cluster, "--jsonl"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    progress = [line["progress"] for line in lines[:-1]]
    assert [p["variant"] for p in progress if p["event"] == "started"] == ["dynamic"]  # the conversions, counted
    assert sorted(p["variant"] for p in progress if p.get("reused")) == ["fp32", "int8", "prune50-int8"]
    assert progress[-1]["done"] == progress[-1]["total"] == 4 and progress[-1]["failed"] == 0
    rows = lines[-1]["report"]["rows"]
    assert {r["variant"]: r["reused"] for r in rows} == {"fp32": True, "int8": True, "prune50-int8": True,
                                                         "dynamic": False}
    assert next(r for r in rows if r["variant"] == "dynamic")["built_on"].startswith("ray:127.0.0.1")


def test_a_sweep_whose_driver_is_killed_resumes_on_ray_without_redoing_what_finished(tmp_path, digits_keras,
                                                                                     digit_folders, ray_cluster):
    """SIGKILL the `edgelite sweep --ray` process as soon as its first variant is back; run it again: only the
    variants that were not kept are converted (counted from the progress lines), the others are reused."""
    import signal
    import subprocess
    import sys
    train, evaluation = digit_folders
    args = ["sweep", str(digits_keras), "--calibration", str(train), "--eval-data", str(evaluation), "--train-data",
            str(train), "--epochs", "1", "-o", str(tmp_path / "out"), "--variants", "fp32,int8,prune50-int8",
            "--threads", "1", "--runs", "5", "--ray", ray_cluster, "--jsonl"]
    driver = subprocess.Popen([sys.executable, "-c", "from edgelite.cli.commands import main; main()", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    finished_first = None
    try:
        for line in driver.stdout:
            event = json.loads(line).get("progress", {})
            if event.get("event") == "finished" and event.get("status") == "ok":
                finished_first = event["variant"]
                driver.send_signal(signal.SIGKILL)
                break
    finally:
        driver.kill()
        driver.wait(timeout=60)
    assert finished_first is not None, "no variant finished before the sweep ended"
    rerun = CliRunner().invoke(main, args)
    assert rerun.exit_code == 0, rerun.output
    progress = [json.loads(line)["progress"] for line in rerun.stdout.splitlines()[:-1]]
    reused = {p["variant"] for p in progress if p.get("reused")}
    started = {p["variant"] for p in progress if p["event"] == "started"}
    assert finished_first in reused and "prune50-int8" in started   # the fine-tune was still running when killed
    assert reused | started == {"fp32", "int8", "prune50-int8"} and not reused & started
    rows = json.loads(rerun.stdout.splitlines()[-1])["report"]["rows"]
    assert all(r["error"] is None and r["median_ms"] is not None for r in rows)


def test_a_sweeps_absent_snr_budget_lets_flips_be_judged_on_the_noise_measured_without_a_warning():
    """A sweep converts with no SNR budget (-NO_RECOVERY): any noise is allowed, so the near-tie band is set by the
    noise measured alone, and no division warning reaches the user's terminal."""
    import math
    import warnings

    import numpy as np

    from edgelite.converters.verify.cost import TIE_SIGMAS, flip_evidence
    reference, converted = np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([[0.6, 0.4], [0.45, 0.55]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evidence = flip_evidence(reference, converted, -sweep_mod.NO_RECOVERY)
    assert evidence["band"] == pytest.approx(TIE_SIGMAS * math.sqrt(2) * evidence["sigma"])


@pytest.mark.parametrize("record", ['{"key": ', "[1, 2]", '{"key": "KEY", "result": 3}', "\udcff"])
def test_a_variant_record_that_cannot_be_read_is_built_again_not_a_traceback(tmp_path, record):
    model = tmp_path / "m.keras"
    model.write_bytes(b"a model")
    options = {"calibration": None}
    key, saved = sweep_mod.cached(tmp_path, "int8", model, options)
    assert saved is None
    (tmp_path / "int8.tflite").write_bytes(b"built")
    (tmp_path / "int8.json").write_bytes(record.replace("KEY", key).encode("utf-8", "surrogateescape"))
    assert sweep_mod.cached(tmp_path, "int8", model, options) == (key, None)
    sweep_mod.keep(tmp_path, "int8", key, {"top1": 1.0})
    assert sweep_mod.cached(tmp_path, "int8", model, options) == (key, {"top1": 1.0})


def test_a_sweep_on_a_head_ray_start_made_gives_the_local_figures(ray_head, digits_keras, digit_folders, tmp_path):
    """The sweep CLI against a head the real `ray start --head` runs (Ray's defaults: token authentication on),
    the token read from the head's ~/.ray/auth_token as a user's driver on that machine would."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    address, env = ray_head
    train, evaluation = digit_folders
    args = ["sweep", str(digits_keras), "--calibration", str(train), "--eval-data", str(evaluation), "--variants",
            "fp32,int8", "--threads", "1", "--runs", "10", "--warmup", "1", "--max-accuracy-drop", "1.0"]
    runs = {}
    for side, extra in (("here", []), ("there", ["--ray", address])):
        done = subprocess.run([sys.executable, "-c", "from edgelite.cli.commands import main; main()", *args, "-o",
                               str(tmp_path / side), *extra], capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[side] = {row["variant"]: row for row in json.loads((tmp_path / side / "report.json").read_text())["rows"]}
    assert set(runs["here"]) == set(runs["there"]) == {"fp32", "int8"}
    for name in ("fp32", "int8"):  # the same conversion of the same model on the same images
        assert runs["there"][name]["top1"] == runs["here"][name]["top1"]
        assert runs["there"][name]["agreement"] == runs["here"][name]["agreement"]
        assert runs["there"][name]["built_on"].startswith("ray:127.0.0.1")
