"""edgelite.runtime: load, preprocess, run (on images and live video) and profile .tflite vision models on a device.

Needs numpy, pillow and one TFLite backend (ai-edge-litert, tflite-runtime or TensorFlow);
never imports TensorFlow unless it is the backend chosen.
"""
from edgelite.runtime.errors import BackendUnavailableError, DelegateError, EdgeliteError, InputError, ModelError
from edgelite.runtime.interpreter.backend import Backend, find_backend
from edgelite.runtime.interpreter.model import DelegateInfo, Model, TensorInfo
from edgelite.runtime.interpreter.profiler import ProfileReport, ProfileResult, Stats, profile, profile_one
from edgelite.runtime.modelfile.metadata import InputSpec, Metadata, embed_record, read_metadata
from edgelite.runtime.tasks.classifier import Classifier
from edgelite.runtime.tasks.loading import load
from edgelite.runtime.tasks.postprocess import Class, dequantize, softmax, top_k
from edgelite.runtime.tasks.preprocess import Preprocessor, load_pixels
from edgelite.runtime.tasks.task import Detection, Detector, Embedder, RawModel, Task, TaskResult, read_labels
from edgelite.runtime.tasks.task_options import TaskOptions
from edgelite.runtime.video.stream import FrameResult, RunningMode, Stream, StreamSummary, stream

__all__ = [
    "Backend", "BackendUnavailableError", "Detection", "Detector", "Embedder", "RawModel", "TaskResult", "Class", "Classifier",
    "DelegateError", "DelegateInfo", "EdgeliteError", "InputError", "InputSpec", "Metadata", "Model",
    "ModelError", "Preprocessor", "ProfileReport", "ProfileResult", "Stats", "TensorInfo", "dequantize",
    "embed_record", "find_backend", "load", "load_pixels", "profile", "profile_one", "read_labels",
    "read_metadata", "softmax", "top_k", "stream", "Stream", "StreamSummary", "RunningMode", "TaskOptions", "FrameResult", "Task",
]
