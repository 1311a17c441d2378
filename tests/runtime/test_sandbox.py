"""The sandboxed first load and the allocation guard (issue: hostile models). The child's crash and hang
are stand-ins (a child that kills itself, one that spins): the plumbing is what is tested; the real
refusal path runs a real model through a real child."""
import subprocess
import sys

import pytest

from edgelite.runtime.errors import ModelError
from edgelite.runtime.interpreter import sandbox
from edgelite.runtime.interpreter.model import Model
from tests.conftest import DIGITS_INT8, ROOT

HOSTILE = ROOT / "tests" / "fixtures" / "models" / "hostile"


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGELITE_TRUST", raising=False)
    return tmp_path / "cache" / "verdicts"


def test_a_model_that_computes_more_than_it_declares_is_one_line():
    """BROADCAST_TO declaring [1] but computing 28000x28000 floats: refused after allocation, before it runs."""
    out = subprocess.run([sys.executable, "-c", "from edgelite.cli.commands import main; main()", "profile",
                          str(HOSTILE / "broadcast_bomb.tflite"), "--runs", "1"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 1 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert "its tensors take 3136000012 bytes once allocated, over the limit of 1073741824" in line


def test_an_unknown_file_is_loaded_first_in_a_child_and_its_refusal_names_the_file(fresh_cache):
    path = str(HOSTILE / "broadcast_bomb.tflite")
    with pytest.raises(ModelError, match=rf"^{path}: its tensors take"):
        Model(path)
    assert not fresh_cache.exists() or not list(fresh_cache.iterdir())  # no verdict for a refused model


def test_the_verdict_is_cached_so_the_second_load_spawns_nothing(fresh_cache, monkeypatch):
    Model(DIGITS_INT8)
    assert len(list(fresh_cache.iterdir())) == 1

    def no_child(*args, **kwargs):
        raise AssertionError("a second sandboxed load")
    monkeypatch.setattr(subprocess, "run", no_child)
    assert Model(DIGITS_INT8).inputs


def test_a_crash_in_the_child_is_one_line_and_leaves_this_process_standing(fresh_cache, monkeypatch):
    monkeypatch.setattr(sandbox, "CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(ModelError, match=r"loading it crashed the native interpreter in a sandboxed process "
                                         r"\(SIGSEGV, signal 11\); refusing") as raised:
        Model(DIGITS_INT8)
    assert "memory" not in str(raised.value)  # a segfault is not blamed on the memory limit (qemu-user, #36)
    assert not fresh_cache.exists() or not list(fresh_cache.iterdir())


def test_a_child_that_ran_out_of_memory_is_named_as_such(fresh_cache, monkeypatch):
    monkeypatch.setattr(sandbox, "CHILD", "import os, signal, sys; sys.stderr.write('terminate called after throwing "
                        "an instance of std::bad_alloc\\n'); sys.stderr.flush(); os.kill(os.getpid(), signal.SIGABRT)")
    with pytest.raises(ModelError, match=r"ran out of the sandbox's memory limit of \d+ MiB \(SIGABRT, signal 6; "
                                         r"raise it with EDGELITE_SANDBOX_MEMORY_BYTES\)"):
        Model(DIGITS_INT8)


def test_a_child_that_never_finishes_is_stopped(fresh_cache, monkeypatch):
    monkeypatch.setattr(sandbox, "CHILD", "while True: pass")
    monkeypatch.setattr(sandbox, "WALL_SECONDS", 2)
    with pytest.raises(ModelError, match="did not finish within 2 s in a sandboxed process"):
        Model(DIGITS_INT8)


def test_bytes_and_trusted_files_skip_the_sandbox(fresh_cache, monkeypatch):
    monkeypatch.setattr(sandbox, "CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert Model(DIGITS_INT8.read_bytes()).inputs          # bytes: the converters' own output
    assert Model(DIGITS_INT8, trust=True).inputs
    monkeypatch.setenv("EDGELITE_TRUST", "1")                # what --trust sets
    assert Model(DIGITS_INT8).inputs


@pytest.mark.parametrize("command", [["predict", "IMAGE"], ["profile", "--runs", "1"]])
def test_a_while_loop_that_never_ends_is_refused_within_20_s_for_its_cpu_time(fresh_cache, command, digit_png):
    """A real 736-byte model (built by tests/fixtures/build_hostile.py): WHILE x >= x. It passes every structural
    check and spins forever; the first load's CPU budget comes from its operators' work (a few seconds), and
    the refusal names the CPU-time limit, not a crash or a memory limit."""
    import time
    model = HOSTILE / "while_never_ends.tflite"
    assert model.stat().st_size < 1000
    args = [str(digit_png) if a == "IMAGE" else a for a in command]
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", "from edgelite.cli.commands import main; main()", args[0], str(model),
                          *args[1:]], capture_output=True, text=True, cwd=ROOT, timeout=60)
    elapsed = time.monotonic() - started
    assert out.returncode == 1 and elapsed < 20, (out.returncode, elapsed, out.stderr[-300:])
    (line,) = out.stderr.strip().splitlines()
    assert "used up its CPU-time limit of 5 s" in line and "a loop that never ends" in line, line


def test_the_cpu_budget_grows_with_the_graphs_work_and_stops_at_the_ceiling():
    from edgelite.runtime.modelfile.tflite_file import read_file
    tiny = sandbox.cpu_budget(read_file(HOSTILE / "while_never_ends.tflite")[1])
    digits = read_file(DIGITS_INT8)[1]
    assert tiny == pytest.approx(sandbox.BASE_SECONDS, abs=0.01)
    assert sandbox.work(digits) > 10_000 and tiny < sandbox.cpu_budget(digits) < sandbox.CPU_SECONDS
    assert sandbox.cpu_budget(digits) <= sandbox.CPU_SECONDS
