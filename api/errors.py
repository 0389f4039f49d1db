"""The one table of what HTTP status each error of the core answers (the core knows nothing of
HTTP: ``hpsearch/errors.py``). The exception handlers of ``api/app.py`` read it; an error of a
class not in it answers 400 if it is one of ours."""

from __future__ import annotations

from hpsearch.errors import (
    ArtifactError,
    ArtifactKindError,
    ArtifactNotFoundError,
    ArtifactSpaceError,
    ArtifactWriteError,
    OutcomeError,
    SpecError,
    StorageError,
    StudyExistsError,
    StudyNotFoundError,
)
from hpsearch.scheduling import LeaseHeldError, LeaseNotFoundError
from hpsearch.uploads import DatasetError, DatasetInUse, DatasetNotFound, DatasetTooLarge
from hpsearch.views import BadQueryError

STATUS: dict[type[Exception], int] = {
    StudyNotFoundError: 404,
    LeaseNotFoundError: 404,
    ArtifactNotFoundError: 404,
    DatasetNotFound: 404,
    LeaseHeldError: 409,
    StudyExistsError: 409,
    ArtifactError: 409,  # not received before the finish that names it; an item that is over
    DatasetInUse: 409,
    DatasetTooLarge: 413,
    SpecError: 422,
    OutcomeError: 422,
    BadQueryError: 422,
    ArtifactKindError: 422,
    DatasetError: 422,  # cut off, or of another hash
    ArtifactWriteError: 500,
    StorageError: 503,
    ArtifactSpaceError: 507,
}
DEFAULT = 400


def status_of(exc: Exception) -> int:
    """The status ``exc`` answers: that of its own class in :data:`STATUS`, else of the nearest
    class it derives from."""
    return next((STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS), DEFAULT)
