"""Datasets on a server: ``hpsearch data push|list|delete``, and the upload ``hpsearch launch``
does for a spec that names a local folder or array file.

A local ``dataset.path`` is pushed (unless the server has it already: datasets are named by the
sha256 of their content) and the spec the server stores names it ``sha256:<hex>``, so workers on
other machines fetch it from the server. ``--no-upload`` keeps the path as it is, made absolute,
for workers that all see it (a shared filesystem, or ``hpsearch up`` on one machine).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hpsearch.cli._main import main, run_reporting_errors
from hpsearch.cli._service import JSON, SERVER, TOKEN, _client

if TYPE_CHECKING:
    from hpsearch.client import ServiceClient
    from hpsearch.spec import StudySpec


def with_data_on_server(
    client: ServiceClient, spec: StudySpec, upload: bool, say: bool = True
) -> StudySpec:
    """``spec`` as the server should store it: its local data and the model file its
    ``model.init_from`` names pushed and named by their hash (``upload``), or their paths made
    absolute; a spec of a built-in data set as it is."""
    from hpsearch.spec import STUDY_PREFIX, USER_DATA, spec_with
    from hpsearch.uploads import is_uploaded

    local_files: list[tuple[str, str | None, str | None]] = []
    if spec.dataset.name in USER_DATA:
        local_files.append(("dataset.path", spec.dataset.path, None))
    init = spec.model.init_from  # study:NAME is the server's to resolve
    if init is not None and not init.startswith(STUDY_PREFIX):
        local_files.append(("model.init_from", init, "model"))
    for field, path, kind in local_files:
        if path is None or is_uploaded(path):
            continue
        local = Path(path).expanduser().resolve()
        if not upload:
            spec = spec_with(spec, {field: str(local)})
            continue
        if not local.exists():
            from hpsearch.errors import SpecError

            raise SpecError([(field, f"{local} does not exist")], spec.name)
        name, sent = client.push_dataset(local, kind)
        if say:
            done = "uploaded" if sent else "already on the server"
            click.echo(f"hpsearch: {local} {done} as {name}", err=True)
        spec = spec_with(spec, {field: name})
    return spec


@main.group()
def data() -> None:
    """Datasets on a server, for workers that do not share a filesystem with you."""


@data.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@SERVER
@TOKEN
@JSON
def push(path: Path, server: str, token: str | None, as_json: bool) -> None:
    """Upload a folder of images or an .npz/.pt file (once: it is named by its sha256)."""
    with _client(server, token) as client:
        name, sent = run_reporting_errors(lambda: client.push_dataset(path.resolve()), as_json)
    if as_json:
        click.echo(json.dumps({"path": name, "uploaded": sent}))
    else:
        click.echo(f"{name} ({'uploaded' if sent else 'already on the server'})")
        click.echo(f"use it in a spec: dataset: {{path: {name}}}")


@data.command(name="list")
@SERVER
@TOKEN
@JSON
def list_(server: str, token: str | None, as_json: bool) -> None:
    """The datasets on the server: name, kind, size, and the studies that use them."""
    with _client(server, token) as client:
        found = run_reporting_errors(client.datasets, as_json)
    if as_json:
        click.echo(json.dumps([d.model_dump(mode="json") for d in found]))
        return
    if not found:
        click.echo("no datasets yet: push one with 'hpsearch data push PATH'")
    for d in found:
        users = ", ".join(d.studies) or "no study"
        size = f"{d.bytes / 2**20:.1f} MiB"
        click.echo(f"sha256:{d.sha256}  {d.kind:6}  {size:>10}  {d.name}  ({users})")


@data.command()
@click.argument("digest")
@SERVER
@TOKEN
@JSON
def delete(digest: str, server: str, token: str | None, as_json: bool) -> None:
    """Delete a dataset (sha256:HEX) that no study uses."""
    with _client(server, token) as client:
        run_reporting_errors(lambda: client.delete_dataset(digest), as_json)
    click.echo(json.dumps({"deleted": digest}) if as_json else f"deleted {digest}")
