"""The error a spec's cross-field check raises."""

from __future__ import annotations


class FieldProblem(ValueError):
    """A cross-field check failed; ``path`` is the dotted field the user has to change."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
