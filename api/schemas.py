"""Response bodies of the API (request bodies are study specs: ``hpsearch.spec.StudySpec``)."""

from __future__ import annotations

from pydantic import BaseModel


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
