"""Which modules a ``python:MODULE:CALLABLE`` model may be imported from, in this process.

A spec is data anyone with the admin token can send, and importing a module runs its code: a
worker must not do that for a module its owner did not name. So the setting is per process, it
allows nothing by default, and each front end sets it: the worker from ``--allow-module``, the
local runner (``hpsearch run``, ``hpsearch train``) with the module of the user's own spec.

Kept free of PyTorch so that the CLI and the worker set it before anything heavy loads. The
setting is a plain module global: read once per model build, written at start-up (a worker, the
CLI) or around a local run, never by two threads at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from hpsearch.errors import HPSearchError, ModuleNotAllowedError

if TYPE_CHECKING:
    from hpsearch.spec import ModelSpec

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_allowed: tuple[str, ...] = ()


def allow_modules(prefixes: Iterable[str]) -> None:
    """Let this process build ``python:`` models whose module is one of ``prefixes`` or inside
    one (``mypkg`` allows ``mypkg`` and ``mypkg.nets``, not ``mypkg2``); replaces the previous
    setting, and an empty list allows none (the default). A prefix that is not a dotted module
    name is an :class:`HPSearchError`."""
    global _allowed
    wanted = tuple(dict.fromkeys(prefixes))
    bad = [p for p in wanted if not _MODULE_NAME.fullmatch(p)]
    if bad:
        raise HPSearchError(f"{bad[0]!r} is not a module name such as mypkg or mypkg.models")
    _allowed = wanted


def allowed_modules() -> tuple[str, ...]:
    """The prefixes this process allows (what :func:`allow_modules` set last)."""
    return _allowed


def python_module(arch: str) -> str | None:
    """The module a ``python:MODULE:CALLABLE`` arch imports; None for any other arch."""
    if not arch.startswith("python:"):
        return None
    return arch.split(":")[1]


def check_module_allowed(arch: str) -> None:
    """Raise :class:`ModuleNotAllowedError` unless this process may import ``arch``'s module."""
    module = python_module(arch)
    if module is None:
        return
    if not any(module == p or module.startswith(p + ".") for p in _allowed):
        raise ModuleNotAllowedError(arch, module)


@contextmanager
def own_model_allowed(model: ModelSpec) -> Iterator[tuple[str, ...]]:
    """Within the block, also allow the module of ``model``'s own ``python:`` arch: for a run of
    the user's own spec on their own machine (the local runner, ``hpsearch train``), where the
    spec comes from the person who runs it. Yields what is allowed (for processes the run
    spawns); restores the previous setting afterwards."""
    previous = _allowed
    module = python_module(model.arch)
    allow_modules([*previous, *([module] if module else [])])
    try:
        yield _allowed
    finally:
        allow_modules(previous)
