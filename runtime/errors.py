"""One exception hierarchy for everything edgelite raises on purpose.

The library never prints or exits; the CLI turns these into one line and exit code 1.
Messages name the file or option at fault and say what to do next.
"""


class EdgeliteError(Exception):
    """Base class: a problem edgelite detected and can explain in one line."""


class ModelError(EdgeliteError):
    """A model file is missing, unreadable, corrupt, or not something edgelite can run."""


class InputError(EdgeliteError):
    """An image or array cannot be turned into the model's input."""


class BackendUnavailableError(EdgeliteError):
    """No usable TFLite backend (or the requested one) is installed."""


class DelegateError(EdgeliteError):
    """A delegate could not be loaded or applied to the model."""
