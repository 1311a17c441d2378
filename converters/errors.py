"""What a conversion raises on purpose (the device runtime knows nothing of converting), and the boundary every
converter call goes through."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from edgelite.runtime.errors import EdgeliteError


class ConversionError(EdgeliteError):
    """A model could not be converted as asked."""


def first_line(exc: BaseException | str) -> str:
    """A library's exception (or its text) as one bounded line (loaders and converters raise pages of text)."""
    text = " ".join(str(exc).split())
    return text[:240] + ("..." if len(text) > 240 else "")


@contextlib.contextmanager
def converter_boundary(one_line: Callable[[str], ConversionError]) -> Iterator[None]:
    """Around a call into a converter (TensorFlow's, litert-torch's): what it prints is silenced, and what it
    raises (an MLIR dump, a torch.export trace, ValueError and friends) becomes ``one_line(its text)``."""
    from edgelite.converters.tf import quiet
    try:
        with quiet():
            yield
    except ConversionError:
        raise
    except Exception as exc:  # noqa: BLE001 - converters raise anything
        raise one_line(str(exc)) from None
