"""TensorFlow, imported on first use with one message saying how to install it."""
from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

from edgelite.runtime.errors import BackendUnavailableError
from edgelite.runtime.interpreter.backend import INSTALL_TENSORFLOW
from edgelite.runtime.interpreter.native_log import captured_native_stderr

INSTALL = INSTALL_TENSORFLOW


def tensorflow():
    """The tensorflow module; its start-up chatter on fd 2 (CUDA probes, oneDNN notes) is swallowed."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    failure = None
    with captured_native_stderr():
        try:
            import tensorflow as tf
        except ImportError as exc:
            failure = exc
    if failure is not None:
        raise BackendUnavailableError(f"converting needs TensorFlow ({failure}); install it: {INSTALL}")
    return tf


@contextlib.contextmanager
def quiet():
    """Silences what TensorFlow and Keras print while converting: Keras's export notes go to
    stdout (which would corrupt --json), the MLIR converter's to fd 2, plus Python warnings."""
    with captured_native_stderr(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
