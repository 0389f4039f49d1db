"""Giving a run up part-way: a worker whose item's study was stopped, or which is told to shut
down, must not train on to the end (a final training can take hours).

The executor of a work item installs a check for the duration of the item; every optimizer step
asks it (a host-side flag, no device sync) and raises :class:`CancelledError` once it says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from hpsearch.errors import CancelledError

_CHECK: ContextVar[Callable[[], bool] | None] = ContextVar("hpsearch_cancel_check", default=None)


@contextmanager
def cancellable(cancelled: Callable[[], bool] | None) -> Iterator[None]:
    """Within the block, training raises :class:`CancelledError` at its next step once
    ``cancelled()`` is true."""
    token = _CHECK.set(cancelled)
    try:
        yield
    finally:
        _CHECK.reset(token)


def raise_if_cancelled() -> None:
    check = _CHECK.get()
    if check is not None and check():
        raise CancelledError()
