"""Response bodies of the API (request bodies are study specs: ``hpsearch.spec.StudySpec``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel

# Ids are 32-bit integers in every database we use: larger ones are refused up front (422).
_ID_MAX = 2**31 - 1
StudyId = Annotated[int, Path(ge=1, le=_ID_MAX, description="a study's id")]
ItemId = Annotated[int, Path(ge=1, le=_ID_MAX, description="a work item's id (its lease)")]


class StudyCreated(BaseModel):
    id: int
    name: str
    state: str


class StudyListItem(BaseModel):
    id: int
    name: str
    state: str  # running / stopped / completed / failed
    stage: str | None  # the stage in progress, for a running study
    trials: dict[str, int]  # counts by state: complete, pruned, failed, running, ...
    best_val_accuracy: float | None
    created_at: str
    updated_at: str
