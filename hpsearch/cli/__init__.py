"""The ``hpsearch`` command line."""

from hpsearch.cli import _data, _model, _run, _service, _train  # noqa: F401  (they register commands)
from hpsearch.cli._main import main

# ``hpsearch serve`` and ``hpsearch worker`` live in the server and worker packages, which import
# the core: ``main`` finds them through the ``hpsearch.commands`` entry points when they are run.

__all__ = ["main"]
