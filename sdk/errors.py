"""The exception hierarchy, public under ``edgelite.errors`` (defined in the runtime, which
cannot import from here)."""
from edgelite.runtime.errors import (
    BackendUnavailableError,
    ClusterError,
    ConversionError,
    DelegateError,
    DeviceUnreachableError,
    EdgeliteError,
    InputError,
    ModelError,
    RemoteError,
)

__all__ = ["BackendUnavailableError", "ClusterError", "ConversionError", "DelegateError", "DeviceUnreachableError",
           "EdgeliteError", "InputError", "ModelError", "RemoteError"]
