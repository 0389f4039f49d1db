"""Study management: launch, list, inspect, page through trials, stop, resume, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from api.deps import AdminDep, MachineDep, SettingsDep, StoreDep, StudyDep
from api.schemas import StudyCreated, StudyListItem, StudyRead, error_responses
from api.settings import Settings
from hpsearch.data import outside_roots
from hpsearch.errors import SpecError
from hpsearch.protocol import TrialDetail, TrialPage, TrialView
from hpsearch.recipe import MemoryLimit
from hpsearch.scheduling import resolve_init_from, stored_model
from hpsearch.spec import STUDY_PREFIX, parse_spec, read_spec_text
from hpsearch.stages import check_launch
from hpsearch.storage import Store, StudyRecord
from hpsearch.views import TrialStateName, best_of, summary, trial_detail, trial_page

router = APIRouter(
    prefix="/api/studies",
    tags=["studies"],
    dependencies=[AdminDep],
    responses=error_responses(401, 403, 503),
)

_JSON = ("application/json",)
_YAML = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "description": "A study spec, as JSON or as YAML (Content-Type: application/yaml).",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}
_ONE_STUDY = error_responses(404)  # the routes of one study: 404 for an unknown id or name
_STATE_CHANGE = error_responses(404, 409)  # stop, resume: 409 when the study is not in the state


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StudyCreated,
    openapi_extra=_SPEC_BODY,
    responses=error_responses(409, 413, 415, 422),
)
async def create_study(request: Request, store: StoreDep, settings: SettingsDep) -> StudyCreated:
    """Launch a study from a spec; a name already taken is 409."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _JSON + _YAML:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the spec as application/json or application/yaml, not {media or 'nothing'!r}",
        )
    raw = await request.body()
    # parsing, the launch check (which reads the data's headers) and the insert run in a
    # thread: the event loop goes on answering every other request (/healthz) meanwhile
    return await run_in_threadpool(_launch, raw, media in _JSON, store, settings)


def _launch(raw: bytes, is_json: bool, store: Store, settings: Settings) -> StudyCreated:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([("", "the body is not UTF-8 text")], "request body") from None
    data = read_spec_text(text, "request body", is_json=is_json)
    spec = parse_spec(data, "request body")
    # the server's own files only under the roots its operator lists: nothing else is read
    named = {"dataset.path": spec.dataset.path, "model.init_from": spec.model.init_from}
    refused = [
        (field, why)
        for field, path in named.items()
        if path is not None
        and not path.startswith(STUDY_PREFIX)
        and (why := outside_roots(path, settings.roots))
    ]
    if refused:
        raise SpecError(refused, "request body")
    limit = MemoryLimit(
        round(settings.max_item_memory_gib * 2**30),
        "the server's limit (HPSEARCH_MAX_ITEM_MEMORY_GIB)",
    )
    # what its work will derive, its data (uploaded ones are in the data directory), its memory
    spec = resolve_init_from(store, spec, settings.datasets)  # study:NAME: its model file
    check_launch(spec, limit, "request body", store=settings.datasets)
    record = store.create_study(spec, driver="server")
    return StudyCreated(id=record.id, name=record.name, state=record.state)


@router.get("", response_model=list[StudyListItem])
def list_studies(machine: MachineDep) -> list[StudyListItem]:
    """Every study with its state, current stage, trial counts and best validation accuracy."""
    return [_list_item(machine, record) for record in machine.store.list_studies()]


@router.get("/{study}", response_model=StudyRead, responses=_ONE_STUDY)
def get_study(record: StudyDep, machine: MachineDep) -> StudyRead:
    """A study: spec, state, and every stage's result (numbers, verdicts, curves)."""
    view = summary(machine, record.id)
    return StudyRead(id=record.id, spec=record.spec, **dict(view))


@router.get("/{study}/trials", response_model=TrialPage, responses=_ONE_STUDY)
def get_trials(
    record: StudyDep,
    machine: MachineDep,
    state: TrialStateName | None = None,
    stage: Annotated[str | None, Query(pattern=r"^(coarse|refine-\d+)$")] = None,
    sort: Annotated[str, Query(pattern=r"^-?[A-Za-z0-9_.]{1,64}$")] = "number",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TrialPage:
    """A page of the study's trials, sorted by ``value`` (best first), ``number``, ``duration``,
    ``epochs``, ``worker``, ``state``, ``stage`` or a parameter's name; ``-`` reverses."""
    return trial_page(
        machine, record, state=state, stage=stage, sort=sort, limit=limit, offset=offset
    )


@router.get("/{study}/best", response_model=list[TrialView], responses=_ONE_STUDY)
def get_best(
    record: StudyDep, machine: MachineDep, k: Annotated[int, Query(ge=1, le=1000)] = 10
) -> list[TrialView]:
    """The k completed trials with the highest validation accuracy, best first."""
    return best_of(machine, record, k)


@router.get("/{study}/trials/{stage}/{number}", response_model=TrialDetail, responses=_ONE_STUDY)
def get_trial(
    record: StudyDep,
    stage: Annotated[str, Path(pattern=r"^(coarse|refine-\d+)$")],
    number: Annotated[int, Path(ge=0, le=2**31 - 1)],
    machine: MachineDep,
) -> TrialDetail:
    """One trial: params, state and reason, worker, timings, and every epoch's metrics."""
    return trial_detail(machine, record, stage, number)


@router.get(
    "/{study}/model",
    response_class=FileResponse,
    response_model=None,  # a file, streamed: no JSON body to declare
    responses={200: {"content": {"application/octet-stream": {}}}, **_ONE_STUDY},
)
def get_model(
    record: StudyDep,
    store: StoreDep,
    kind: Annotated[Literal["final", "ensemble", "member"], Query()] = "final",
    member: Annotated[int, Query(ge=0, le=100)] = 0,
) -> FileResponse:
    """The study's trained model as one file (``hpsearch.load_model``, ``hpsearch predict``):
    the final model, the ensemble (``kind=ensemble``), exactly what scored the test metrics
    stored with it, or one of the ensemble's other members alone (``kind=member&member=I``);
    404 saying why when there is none."""
    file, path = stored_model(store, record, kind, member)
    return FileResponse(path, filename=file.filename, headers={"X-Sha256": file.sha256})


@router.post("/{study}/stop", response_model=StudyCreated, responses=_STATE_CHANGE)
def stop_study(record: StudyDep, store: StoreDep) -> StudyCreated:
    """Stop: running trials are pruned at their next report, nothing new is handed out."""
    return _transition(store, record, frm="running", to="stopped")


@router.post("/{study}/resume", response_model=StudyCreated, responses=_STATE_CHANGE)
def resume_study(record: StudyDep, store: StoreDep) -> StudyCreated:
    """Resume a stopped study where it stopped (from now on this server drives it)."""
    return _transition(store, record, frm="stopped", to="running", driver="server")


@router.delete(
    "/{study}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,  # 204: no body
    responses=_ONE_STUDY,
)
def delete_study(record: StudyDep, machine: MachineDep) -> Response:
    """Delete a study, its stage results and its Optuna studies."""
    machine.delete(record.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _transition(
    store: StoreDep, record: StudyRecord, frm: str, to: str, driver: str | None = None
) -> StudyCreated:
    if not store.set_study_state(record.id, to, driver=driver, only_from=frm):
        now = store.get_study(record.id).state
        raise HTTPException(status.HTTP_409_CONFLICT, f"study {record.name!r} is {now}, not {frm}")
    return StudyCreated(id=record.id, name=record.name, state=to)


def _list_item(machine: MachineDep, record: StudyRecord) -> StudyListItem:
    view = summary(machine, record.id)
    current = next((s.name for s in view.stages if s.status in ("running", "pending")), None)
    counts: dict[str, int] = {}
    for stage in view.stages:
        for state, n in (stage.counts.model_dump() if stage.counts else {}).items():
            counts[state] = counts.get(state, 0) + n
    return StudyListItem(
        id=record.id,
        name=record.name,
        state=record.state,
        stage=current if record.state == "running" else None,
        trials=counts,
        best_val_accuracy=view.best.val_accuracy,
        objective=view.best.objective,
        best_value=view.best.value,
        created_at=record.created_at.isoformat(),
        updated_at=record.updated_at.isoformat(),
    )
