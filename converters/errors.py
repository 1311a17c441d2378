"""What a conversion raises on purpose (the device runtime knows nothing of converting)."""
from edgelite.runtime.errors import EdgeliteError


class ConversionError(EdgeliteError):
    """A model could not be converted as asked."""


def first_line(exc: BaseException) -> str:
    """A library's exception as one bounded line (loaders and converters raise pages of text)."""
    text = " ".join(str(exc).split())
    return text[:240] + ("..." if len(text) > 240 else "")
