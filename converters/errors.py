"""What a conversion raises on purpose (the device runtime knows nothing of converting)."""
from edgelite.runtime.errors import EdgeliteError


class ConversionError(EdgeliteError):
    """A Keras model could not be converted as asked."""
