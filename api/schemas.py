"""What the routes declare besides their bodies: path parameters, the error responses of the
OpenAPI document. The bodies themselves, requests and answers, are defined once, in
``hpsearch.protocol`` (the client reads the same models); they are re-exported here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from hpsearch.protocol import (
    ClaimRequest,
    DatasetRead,
    ErrorBody,
    FileReceived,
    FinishAnswer,
    FinishRequest,
    HeartbeatAnswer,
    HeartbeatRequest,
    LeaseRead,
    Problem,
    ReportAnswer,
    ReportRequest,
    StudyCreated,
    StudyListItem,
    StudyRead,
    WorkerRead,
)

__all__ = [
    "ID_MAX",
    "ClaimRequest",
    "DatasetRead",
    "ErrorBody",
    "FileReceived",
    "FinishAnswer",
    "FinishRequest",
    "HeartbeatAnswer",
    "HeartbeatRequest",
    "ItemId",
    "LeaseRead",
    "Problem",
    "ReportAnswer",
    "ReportRequest",
    "StudyCreated",
    "StudyKey",
    "StudyListItem",
    "StudyRead",
    "WorkerRead",
    "binary_body",
    "error_responses",
]

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
