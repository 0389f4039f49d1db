"""The hpsearch worker daemon: pulls trials from the server over HTTP and trains them.

Imports ``hpsearch``; never imported by it, and talks to ``api`` over HTTP only. The names below
load on first use, so ``workers.simulate`` (load tests, no training) does not pull in PyTorch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ProtocolClient": "workers._client",
    "Unreachable": "workers._client",
    "Worker": "workers._daemon",
    "Spool": "workers._spool",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'workers' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
