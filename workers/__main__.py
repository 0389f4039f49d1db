"""``python -m workers``: the same as ``hpsearch worker``."""

from workers.cli import worker

worker(prog_name="python -m workers")
