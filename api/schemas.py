"""Response bodies of the API (request bodies are study specs: ``hpsearch.spec.StudySpec``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, Field

from hpsearch.spec import StudySpec
from hpsearch.views import StudySummary

# Ids are 32-bit integers in every database we use: a larger item id is refused up front (422),
# a larger study id names no study (404) without asking the database.
ID_MAX = 2**31 - 1
# A study in a path: its id, or its name (the pattern is StudySpec.name's; a test keeps them equal)
StudyKey = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
        description="a study's id, or its name; a key of digits only is an id, so a study whose "
        "name is all digits must be addressed by its id",
    ),
]
ItemId = Annotated[int, Path(ge=1, le=ID_MAX, description="a work item's id (its lease)")]


class StudyCreated(BaseModel):
    id: int
    name: str
    state: str


class StudyRead(StudySummary):
    """A study: its id and spec, and its summary (every stage with its typed result)."""

    id: int
    spec: StudySpec


class StudyListItem(BaseModel):
    id: int
    name: str
    state: str  # running / stopped / completed / failed
    stage: str | None  # the stage in progress, for a running study
    trials: dict[str, int]  # counts by state: complete, pruned, failed, running, ...
    best_val_accuracy: float | None
    objective: str = "accuracy"  # the spec's search.objective, what the search maximises
    best_value: float | None = None  # the best objective on validation so far
    created_at: str
    updated_at: str


class Problem(BaseModel):
    field: str = Field(description="where: a dotted path such as query.limit or train.lr")
    message: str


class ErrorBody(BaseModel):
    """The body of every error the API answers (4xx and 5xx)."""

    detail: str = Field(description="what was wrong, in words")
    problems: list[Problem] | None = Field(None, description="invalid input: each fault by field")


_ERRORS: dict[int, dict[str, Any]] = {
    400: {"description": "the body cannot be read: not JSON in UTF-8"},
    401: {
        "description": "no token, or not this server's",
        "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    },
    403: {"description": "the worker token on a study route, or a change by cookie alone"},
    404: {"description": "no such study or work item"},
    409: {"description": "conflicts with the current state"},
    413: {"description": "the request body is over the server's limit"},
    415: {"description": "the body's Content-Type is not one this route reads"},
    422: {"description": "invalid input; problems name each fault"},
    507: {"description": "the server has no room to keep the file"},
    503: {
        "description": "the database is unavailable: retry after the seconds given",
        "headers": {"Retry-After": {"required": True, "schema": {"type": "integer"}}},
    },
}


def binary_body(description: str) -> dict[str, Any]:
    """OpenAPI ``openapi_extra=`` of a route whose body is a file, streamed as it is."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    }


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for these error statuses, each with the ErrorBody body."""
    return {status: {"model": ErrorBody, **_ERRORS[status]} for status in statuses}
