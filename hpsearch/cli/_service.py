"""Commands that talk to a server: ``launch``, ``status``, ``stop``, ``resume``, ``delete``.

They speak HTTP only (``hpsearch.client``): the core never imports the server or the workers.
pydantic, httpx and rich load inside the commands, so that ``hpsearch --help`` does not wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from hpsearch.cli._main import fail, main, run_reporting_errors
from hpsearch.errors import HPSearchError

if TYPE_CHECKING:
    from rich.console import Console

    from hpsearch.client import ServiceClient
    from hpsearch.protocol import StudyCreated, StudyListItem


SERVER = click.option(
    "--server",
    envvar="HPSEARCH_SERVER",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The server's URL (or HPSEARCH_SERVER).",
)
TOKEN = click.option(
    "--token", envvar="HPSEARCH_ADMIN_TOKEN", help="Admin token (or HPSEARCH_ADMIN_TOKEN)."
)
SPEC = click.option("--spec", "spec_path", required=True, help="Study spec file, or a name.")
SET = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec field."
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object last.")
STUDY = click.argument("study")


def _client(server: str, token: str | None) -> ServiceClient:
    from hpsearch.client import ServiceClient

    return ServiceClient(server, token)


@main.command()
@SPEC
@SET
@SERVER
@TOKEN
@click.option(
    "--no-upload",
    is_flag=True,
    help="Keep a local dataset.path as it is (every worker sees it) instead of uploading it.",
)
@JSON
def launch(
    spec_path: str,
    overrides: tuple[str, ...],
    server: str,
    token: str | None,
    no_upload: bool,
    as_json: bool,
) -> None:
    """Launch a study on a server; its workers take it from there. A local dataset.path (your
    own folder or array file) is uploaded first, once."""
    from hpsearch.cli._data import with_data_on_server
    from hpsearch.spec import load_spec

    spec = run_reporting_errors(lambda: load_spec(spec_path, overrides), as_json)
    with _client(server, token) as client:
        spec = run_reporting_errors(
            lambda: with_data_on_server(client, spec, upload=not no_upload), as_json
        )
        created = run_reporting_errors(lambda: client.launch(spec), as_json)
    if as_json:
        click.echo(json.dumps(created.model_dump(mode="json")))
    else:
        click.echo(f"launched study {created.name!r} (id {created.id}) on {server}")
        click.echo(f"watch it: hpsearch status {created.id} --server {server}")


@main.command()
@click.argument("study", required=False)
@SERVER
@TOKEN
@JSON
def status(study: str | None, server: str, token: str | None, as_json: bool) -> None:
    """The server's studies, or one STUDY (id or name): its stages and best trial."""
    from hpsearch.cli._view import SearchView, print_result

    with _client(server, token) as client:
        if study is None:
            studies = run_reporting_errors(client.studies, as_json)
            listed = [s.model_dump(mode="json") for s in studies]
            _print(listed, as_json, lambda console: _studies_table(console, studies))
            return
        read = run_reporting_errors(lambda: client.study(study), as_json)
    view = read.model_dump(mode="json")

    def show(console: Console) -> None:
        console.print(SearchView.render(view))
        if read.state in ("completed", "failed"):
            print_result(console, view, f"on {server}")

    _print(view, as_json, show)


def _print(data: object, as_json: bool, show: Callable[[Console], None]) -> None:
    if as_json:
        click.echo(json.dumps(data))
    else:
        from rich.console import Console

        show(Console())


def _studies_table(console: Console, studies: list[StudyListItem]) -> None:
    from rich.table import Table

    if not studies:
        console.print("no studies yet: launch one with 'hpsearch launch --spec FILE'")
        return
    table = Table("id", "name", "state", "stage", "complete", "pruned", "failed", "best (val)")
    for s in studies:
        trials, metric = s.trials, s.objective
        # a server of an earlier version sends no best_value
        best = s.best_value if "best_value" in s.model_fields_set else s.best_val_accuracy
        table.add_row(
            str(s.id),
            s.name,
            s.state,
            s.stage or "",
            str(trials.get("complete", 0)),
            str(trials.get("pruned", 0)),
            str(trials.get("failed", 0)),
            f"{metric} {best:.4f}" if best is not None else "",
        )
    console.print(table)


@main.command()
@STUDY
@SERVER
@TOKEN
@JSON
def stop(study: str, server: str, token: str | None, as_json: bool) -> None:
    """Stop a running STUDY (id or name): its trials stop at their next epoch, none start."""
    _change_state("stop", study, server, token, as_json)


@main.command()
@STUDY
@SERVER
@TOKEN
@JSON
def resume(study: str, server: str, token: str | None, as_json: bool) -> None:
    """Resume a stopped STUDY (id or name) where it stopped."""
    _change_state("resume", study, server, token, as_json)


# what each change needs the study to be, and what it is said to have done
_CHANGES = {"stop": ("running", "stopped"), "resume": ("stopped", "resumed")}


def _change_state(action: str, study: str, server: str, token: str | None, as_json: bool) -> None:
    from hpsearch.client import ServerError

    def change(client: ServiceClient) -> StudyCreated:
        study_id = client.study_id(study)
        try:
            return client.stop(study_id) if action == "stop" else client.resume(study_id)
        except ServerError as exc:
            if exc.status != 409:
                raise
        # 409: the study is in another state (the server's message says which; so do we)
        stored = client.study(study_id)
        raise HPSearchError(
            f"cannot {action} study {stored.study!r} (id {study_id}): it is "
            f"{stored.state}, not {_CHANGES[action][0]}"
        )

    with _client(server, token) as client:
        answer = run_reporting_errors(lambda: change(client), as_json)
    if as_json:
        click.echo(json.dumps(answer.model_dump(mode="json")))
    else:
        click.echo(f"{_CHANGES[action][1]} study {answer.name!r} (id {answer.id})")


@main.command()
@STUDY
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@SERVER
@TOKEN
@JSON
def delete(study: str, yes: bool, server: str, token: str | None, as_json: bool) -> None:
    """Delete a STUDY (id or name) with its trials and results; asks first unless --yes."""
    with _client(server, token) as client:
        study_id = run_reporting_errors(lambda: client.study_id(study), as_json)
        stored = run_reporting_errors(lambda: client.study(study_id), as_json)
        name = stored.study
        if not yes and not _confirm(f"delete study {name!r} (id {study_id}, {stored.state})"):
            fail(f"study {name!r} not deleted (--yes deletes without asking)", as_json=as_json)
        run_reporting_errors(lambda: client.delete(study_id), as_json)
    answer = {"id": study_id, "name": name, "state": "deleted"}
    if as_json:
        click.echo(json.dumps(answer))
    else:
        click.echo(f"deleted study {name!r} (id {study_id})")


def _confirm(question: str) -> bool:
    """Ask on stderr (stdout is for the answer); no answer (end of input) is a no."""
    try:
        return click.confirm(f"{question} and every trial of it?", err=True)
    except click.Abort:
        click.echo(err=True)
        return False
