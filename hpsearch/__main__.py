"""``python -m hpsearch``: the same as the ``hpsearch`` command."""

from hpsearch.cli import main

main(prog_name="hpsearch")
