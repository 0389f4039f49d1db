"""The ``hpsearch`` command line."""

from importlib.metadata import entry_points

from hpsearch.cli import _run, _service, _train  # noqa: F401  (they register their commands)
from hpsearch.cli._main import main

# ``hpsearch serve`` and friends live in the server and worker packages, which import the core:
# they plug in through an entry point rather than being imported from here.
for _plugin in entry_points(group="hpsearch.commands"):
    main.add_command(_plugin.load(), _plugin.name)

__all__ = ["main"]
