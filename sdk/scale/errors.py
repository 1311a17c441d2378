"""What reaching other machines raises on purpose: a device over SSH, a Ray cluster (the device runtime knows
nothing of either)."""
from edgelite.runtime.errors import EdgeliteError


class RemoteError(EdgeliteError):
    """The device could not be reached over SSH, or could not run edgelite."""


class DeviceUnreachableError(RemoteError):
    """SSH itself failed or the device stopped answering: the device is down, not merely failing a model."""


class ClusterError(EdgeliteError):
    """A Ray cluster could not be reached or used (address, versions on its workers, a job that failed)."""
