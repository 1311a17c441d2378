"""The exception hierarchy, public under ``edgelite.errors``: each error is defined where it belongs (the
device runtime's in ``edgelite.runtime.errors``, the converters' and the scale-out's beside them) and gathered
here."""
from edgelite.converters.errors import ConversionError
from edgelite.runtime.errors import BackendUnavailableError, DelegateError, EdgeliteError, InputError, ModelError
from edgelite.scale.errors import ClusterError, DeviceUnreachableError, RemoteError

__all__ = ["BackendUnavailableError", "ClusterError", "ConversionError", "DelegateError", "DeviceUnreachableError",
           "EdgeliteError", "InputError", "ModelError", "RemoteError"]
