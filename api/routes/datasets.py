"""Datasets uploaded for remote workers: push (admin), list, fetch (workers), delete.

A dataset is named by the sha256 of its one file (an array file, or a folder's tar): ``hpsearch
launch`` pushes a local ``dataset.path`` and the stored spec says ``sha256:<hex>``; a worker
fetches it once into its cache and checks the hash. Uploads are streamed to disk, checked
against their name as they arrive, and refused past ``HPSEARCH_MAX_UPLOAD_BYTES`` (413).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import FileResponse

from api.deps import AdminDep, SettingsDep, StoreDep, WorkerDep
from api.schemas import DatasetRead, binary_body, error_responses
from api.uploads import receive_body
from hpsearch.errors import ArtifactSpaceError
from hpsearch.uploads import DatasetInUse, DatasetStore, StoredDataset

router = APIRouter(
    prefix="/api/datasets", tags=["datasets"], responses=error_responses(401, 403, 503)
)
Digest = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the dataset's sha256, hex")]
_FOUND = error_responses(404)


def _read(stored: StoredDataset, studies: list[str]) -> DatasetRead:
    return DatasetRead.model_validate(vars(stored) | {"studies": studies})


def get_datasets(settings: SettingsDep) -> DatasetStore:
    return DatasetStore(settings.datasets)


DatasetsDep = Annotated[DatasetStore, Depends(get_datasets)]


@router.get("", dependencies=[AdminDep], response_model=list[DatasetRead])
def list_datasets(datasets: DatasetsDep, store: StoreDep) -> list[DatasetRead]:
    """Every uploaded dataset: its sha256, kind, size, and the studies that use it."""
    users = _users(store)
    return [_read(d, users.get(d.sha256, [])) for d in datasets.all()]


@router.put(
    "/{sha256}",
    dependencies=[AdminDep],
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetRead,
    responses=error_responses(413, 422, 507),
    openapi_extra=binary_body(
        "the dataset's one file: an .npz/.pt, or a folder's tar (or a model file that a "
        "spec's model.init_from names)"
    ),
)
async def push_dataset(
    sha256: Digest,
    request: Request,
    datasets: DatasetsDep,
    settings: SettingsDep,
    store: StoreDep,
    kind: Literal["folder", "arrays", "model"] = "arrays",
    name: Annotated[str, Query(max_length=256)] = "",
) -> DatasetRead:
    """Upload a dataset, streamed; its sha256 must be the one in the path (422 if not). The
    same data again is acknowledged and not written twice."""
    if not datasets.has(sha256):
        dest = datasets.file(sha256)
        try:
            size = await receive_body(request, dest, sha256, settings.max_upload_bytes, "dataset")
        except OSError as exc:  # a full disk: nothing is kept (Incoming removes its part file)
            why = f"the server cannot keep the dataset: {exc.strerror}"
            raise ArtifactSpaceError(why) from None
        datasets.record(sha256, kind, name, size)
    return _read(datasets.get(sha256), _users(store).get(sha256, []))


@router.get(
    "/{sha256}",
    dependencies=[WorkerDep],
    response_class=FileResponse,
    response_model=None,  # a file, streamed: no JSON body to declare
    responses={200: {"content": {"application/octet-stream": {}}}, **_FOUND},
)
def fetch_dataset(sha256: Digest, datasets: DatasetsDep) -> FileResponse:
    """The dataset's file, for a worker (or the admin) to download."""
    stored = datasets.get(sha256)
    return FileResponse(datasets.file(sha256), filename=stored.name or sha256)


@router.delete(
    "/{sha256}",
    dependencies=[AdminDep],
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,  # 204: no body
    responses=error_responses(404, 409),
)
def delete_dataset(sha256: Digest, datasets: DatasetsDep, store: StoreDep) -> Response:
    """Delete a dataset no study uses any more (409 naming the studies that do)."""
    users = _users(store).get(sha256, [])
    if users:
        raise DatasetInUse(f"dataset sha256:{sha256} is used by studies {', '.join(users)}")
    datasets.delete(sha256)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _users(store: StoreDep) -> dict[str, list[str]]:
    """Uploaded dataset -> the studies whose spec names it."""
    users: dict[str, list[str]] = {}
    for study in store.list_studies():
        for path in (study.spec.dataset.path, study.spec.model.init_from):  # data, weights
            if path and path.startswith("sha256:"):
                users.setdefault(path.removeprefix("sha256:"), []).append(study.name)
    return users
