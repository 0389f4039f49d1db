"""Finished results kept on disk until the server acknowledges them.

A result is written (atomically: temp file, then rename) before the first delivery attempt and
deleted only after the server answered, so no finished work is lost to a blip or a restart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def put(self, item_id: int, outcome: dict[str, Any]) -> None:
        temp = self.directory / f".{item_id}.json.tmp"
        temp.write_text(json.dumps(outcome))
        os.replace(temp, self.directory / f"{item_id}.json")

    def pending(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for path in sorted(self.directory.glob("*.json")):
            yield int(path.stem), json.loads(path.read_text())

    def done(self, item_id: int) -> None:
        (self.directory / f"{item_id}.json").unlink(missing_ok=True)
