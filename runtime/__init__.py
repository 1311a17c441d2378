"""edgelite.runtime: load, preprocess, run (on images and live video) and profile .tflite vision models on a device.

Needs numpy, pillow and one TFLite backend (ai-edge-litert, tflite-runtime or TensorFlow);
never imports TensorFlow unless it is the backend chosen.
"""
from .backend import Backend, find_backend
from .classifier import Classifier, read_labels
from .errors import BackendUnavailableError, ConversionError, DelegateError, EdgeliteError, InputError, ModelError
from .metadata import InputSpec, Metadata, embed_record, read_metadata
from .model import DelegateInfo, Model, TensorInfo
from .postprocess import Class, dequantize, softmax, top_k
from .preprocess import Preprocessor, load_pixels
from .profiler import ProfileReport, ProfileResult, Stats, profile, profile_one
from .stream import FrameResult, Stream, StreamSummary, stream
from .tasks import Detection, Detector, Embedder, RawModel, Task, TaskResult, load

__all__ = [
    "Backend", "BackendUnavailableError", "Detection", "Detector", "Embedder", "RawModel", "TaskResult", "Class", "Classifier", "ConversionError",
    "DelegateError", "DelegateInfo", "EdgeliteError", "InputError", "InputSpec", "Metadata", "Model",
    "ModelError", "Preprocessor", "ProfileReport", "ProfileResult", "Stats", "TensorInfo", "dequantize",
    "embed_record", "find_backend", "load", "load_pixels", "profile", "profile_one", "read_labels",
    "read_metadata", "softmax", "top_k", "stream", "Stream", "StreamSummary", "FrameResult", "Task",
]
