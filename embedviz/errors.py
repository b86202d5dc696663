"""One error hierarchy with messages written for the person at the keyboard.

Pages and the command line catch :class:`EmbedVizError` at their boundary and show its
message; anything else is a bug.
"""

__all__ = ["EmbedVizError", "DataError", "ModelError", "ReducerError", "Cancelled", "first_line"]


class EmbedVizError(Exception):
    """Base class: the message says what was wrong and what to do."""


class DataError(EmbedVizError):
    """Images, archives, manifests or feature files that cannot be used."""


class ModelError(EmbedVizError):
    """Architectures, weights files or layers that cannot be used."""


class ReducerError(EmbedVizError):
    """Reducer names or parameters that do not fit the data."""


class Cancelled(EmbedVizError):
    """Long work stopped because the caller asked it to."""


def first_line(exc: BaseException, limit: int = 120) -> str:
    """An exception's message on one line, at most ``limit`` characters (its type's name if it has none),
    to quote a library's complaint inside a message of ours."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit]
