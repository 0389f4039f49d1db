"""Request bodies streamed to disk: a dataset's, a model file's. Checked against their sha256 as
they arrive, refused past their own limit (413, declared or streamed), kept only once whole."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from hpsearch.uploads import DatasetTooLarge, Incoming


async def receive_body(request: Request, dest: Path, sha256: str, limit: int, what: str) -> int:
    """Stream ``request``'s body to ``dest``; its size."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise DatasetTooLarge(f"the {what} is larger than the limit of {limit:,} bytes")
    with Incoming(dest, sha256, limit, what) as incoming:
        async for chunk in request.stream():
            incoming.write(chunk)  # a megabyte at a time: a short block of the loop
        return await run_in_threadpool(incoming.keep)
