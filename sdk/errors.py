"""The exception hierarchy, public under ``edgelite.errors`` (defined in the runtime, which
cannot import from here)."""
from edgelite.runtime.errors import (
    BackendUnavailableError,
    ConversionError,
    DelegateError,
    EdgeliteError,
    InputError,
    ModelError,
    RemoteError,
)

__all__ = ["BackendUnavailableError", "ConversionError", "DelegateError", "EdgeliteError", "InputError",
           "ModelError", "RemoteError"]
