"""The examples run as documented."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.tensorflow
def test_train_and_convert(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "train_and_convert.py"), "--out", str(tmp_path),
                          "--epochs", "3"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "top-1 on 360 held-out scans: float" in out.stdout
    assert (tmp_path / "digits_int8.tflite").stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp"))
