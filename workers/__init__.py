"""The hpsearch worker daemon: pulls trials from the server over HTTP and trains them.

Imports ``hpsearch``; never imported by it, and talks to ``api`` over HTTP only.
"""

from workers._client import ProtocolClient, Unreachable
from workers._daemon import Worker
from workers._spool import Spool

__all__ = ["ProtocolClient", "Spool", "Unreachable", "Worker"]
