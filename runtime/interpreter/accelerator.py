"""LiteRT's accelerator API (``CompiledModel``) behind the Interpreter methods ``Model`` uses.

ai-edge-litert reaches the GPU through ``CompiledModel`` with ``HardwareAccelerator.GPU``
rather than through a delegate library. This adapter gives it the interpreter's shape
(details, set_tensor, invoke, get_tensor) so the rest of the runtime has one code path.
Tested here with the CPU accelerator; the GPU itself is not verified on hardware (these
machines have none, and LiteRT's WebGPU accelerator finds no adapter on them).
"""
from __future__ import annotations

import numpy as np

from edgelite.runtime.modelfile.tflite_file import ModelFile


def available(backend) -> bool:
    """Whether the backend ships the accelerator API (ai-edge-litert does; tflite-runtime does not)."""
    if backend.name != "ai_edge_litert":
        return False
    try:
        import ai_edge_litert.compiled_model  # noqa: F401
    except ImportError:
        return False
    return True


class AcceleratedInterpreter:
    """A CompiledModel on one accelerator ("gpu", "cpu", "npu"), driven like an Interpreter."""

    def __init__(self, data: bytes, model: ModelFile, accelerator: str = "gpu"):
        from ai_edge_litert import compiled_model as cm
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        flag = getattr(HardwareAccelerator, accelerator.upper())
        # Our own environment, so a failed attempt can release it now (its destructor logs)
        # instead of at interpreter exit.
        self._environment = cm._create_default_environment()
        try:
            self._compiled = cm.CompiledModel.from_buffer(data, hardware_accel=flag, environment=self._environment)
        except Exception:
            self._environment.close()
            raise
        key = next(iter(self._compiled.get_signature_list()))
        self._inputs = self._details(model, self._compiled.get_input_tensor_details(key))
        self._outputs = self._details(model, self._compiled.get_output_tensor_details(key))
        self._in_buffers = self._compiled.create_input_buffers(0)
        self._out_buffers = self._compiled.create_output_buffers(0)
        self._in_position = {d["index"]: i for i, d in enumerate(self._inputs)}
        self._out_position = {d["index"]: i for i, d in enumerate(self._outputs)}

    @staticmethod
    def _details(model: ModelFile, signature: dict) -> list[dict]:
        """Interpreter-style details, quantization read from the validated file."""
        out = []
        for entry in signature.values():
            desc = model.main.tensors[entry["index"]]
            quant = (desc.scales[0], desc.zero_points[0]) if len(desc.scales) == 1 else (0.0, 0)
            out.append({"name": entry["name"], "index": entry["index"], "shape": np.array(entry["shape"]),
                        "dtype": np.dtype(entry["dtype"]).type, "quantization": quant,
                        "shape_signature": np.array(desc.shape_signature or entry["shape"])})
        return out

    @property
    def fully_accelerated(self) -> bool:
        return bool(self._compiled.is_fully_accelerated())

    def allocate_tensors(self):
        """Buffers are created with the compiled model; nothing to do."""

    def get_input_details(self) -> list[dict]:
        return self._inputs

    def get_output_details(self) -> list[dict]:
        return self._outputs

    def set_tensor(self, index: int, value: np.ndarray):
        self._in_buffers[self._in_position[index]].write(value)

    def invoke(self):
        self._compiled.run_by_index(0, self._in_buffers, self._out_buffers)

    def get_tensor(self, index: int) -> np.ndarray:
        d = self._outputs[self._out_position[index]]
        shape = tuple(int(x) for x in d["shape"])
        return self._out_buffers[self._out_position[index]].read(int(np.prod(shape)), d["dtype"]).reshape(shape)

    def resize_tensor_input(self, index, shape):
        raise ValueError("the LiteRT accelerator path runs the model's fixed batch size only")
