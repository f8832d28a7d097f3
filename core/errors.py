"""Typed errors of the engine.

The service maps each to an HTTP status in one place (``SpecError`` and
``DatasetError`` → 422); the engine itself never knows about HTTP.
"""

from __future__ import annotations


class AnnlabError(Exception):
    """Base of every error the engine raises on purpose."""


class SpecError(AnnlabError, ValueError):
    """A run spec that cannot be trained as written.

    ``field`` is the dotted path of the offending field (``model.layers.1.units``)
    so a client can point at it; the message says what is wrong and why. The
    argument order, ``(message, field="")``, is the same as ``DatasetError``'s.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class DatasetError(AnnlabError, ValueError):
    """User data that cannot become a training set (ragged, non-finite, ...)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class CheckpointError(AnnlabError, ValueError):
    """A checkpoint or serialised model that does not fit the spec it claims."""


class UnsafeFileError(AnnlabError, ValueError):
    """An array file that would need pickle to load: refused, never executed."""
