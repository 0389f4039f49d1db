"""The hpsearch worker daemon: pulls trials from the server over HTTP and trains them.

Imports ``hpsearch``; never imported by it, and talks to ``api`` over HTTP only. The names below
load on first use, so ``workers.simulate`` (load tests, no training) does not pull in PyTorch.
"""

from __future__ import annotations

from hpsearch.lazy import lazy_exports

_EXPORTS = {
    "ProtocolClient": "hpsearch.client",
    "Refused": "hpsearch.client",
    "Unreachable": "hpsearch.client",
    "Worker": "workers._daemon",
    "Spool": "workers._spool",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
