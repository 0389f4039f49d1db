"""Trained models: ``hpsearch model download`` (from a server, or from a database and its
artifact directory), ``hpsearch model export`` (a ``torch.export`` program for serving) and
``hpsearch predict`` (classify image files and folders with one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from hpsearch.cli._main import fail, main, run_reporting_errors
from hpsearch.cli._service import JSON, SERVER, TOKEN, _client

KIND = click.option(
    "--kind",
    type=click.Choice(["final", "ensemble", "member"]),
    default="final",
    show_default=True,
    help="The final model, the ensemble, or one of the ensemble's other members (--member).",
)


@main.group()
def model() -> None:
    """The trained models studies keep."""


@model.command()
@click.argument("study")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="[default: STUDY-KIND.pt]")
@KIND
@click.option("--member", type=click.IntRange(0, 100), default=0, show_default=True)
@SERVER
@TOKEN
@click.option("--storage", help="Read the database at this URL instead of asking a server.")
@click.option(
    "--artifacts",
    help="With --storage: the artifact directory [default: HPSEARCH_ARTIFACT_DIR, else beside "
    "a SQLite database].",
)
@JSON
def download(
    study: str,
    output: Path | None,
    kind: str,
    member: int,
    server: str,
    token: str | None,
    storage: str | None,
    artifacts: str | None,
    as_json: bool,
) -> None:
    """Download a study's trained model (by id or name) as one file."""
    dest = output or Path(f"{study}-{kind if kind != 'member' else f'member-{member}'}.pt")
    if storage is None:
        with _client(server, token) as client:
            digest = run_reporting_errors(
                lambda: client.download_model(study, dest, kind, member), as_json
            )
    else:
        digest = run_reporting_errors(
            lambda: _copy_stored(storage, artifacts, study, kind, member, dest), as_json
        )
    if as_json:
        click.echo(json.dumps({"path": str(dest), "sha256": digest, "bytes": dest.stat().st_size}))
    else:
        click.echo(f"{dest} ({dest.stat().st_size / 2**20:.1f} MiB, sha256:{digest})")


def _copy_stored(
    storage: str, artifacts: str | None, key: str, kind: str, member: int, dest: Path
) -> str:
    from hpsearch.scheduling import stored_model
    from hpsearch.storage import Store

    store = Store(storage, artifacts)
    try:
        file, path = stored_model(store, store.get_study(key), kind, member)  # type: ignore[arg-type]
    finally:
        store.close()
    shutil.copyfile(path, dest)
    return file.sha256


ALLOW = click.option(
    "--allow-module",
    "allowed",
    multiple=True,
    metavar="PREFIX",
    help="Allow importing a python: model's module (repeatable).",
)


@model.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="[default: MODEL.pt2]")
@ALLOW
@JSON
def export(model_path: Path, output: Path | None, allowed: tuple[str, ...], as_json: bool) -> None:
    """Export a model file for serving (torch.export): uint8 images (N, C, S, S) in,
    probabilities out; load it with torch.export.load(PATH).module(), no hpsearch needed."""
    from hpsearch.models import allow_modules

    run_reporting_errors(lambda: allow_modules(allowed), as_json)
    from hpsearch.trained import export_model, load_model

    dest = output or model_path.with_suffix(".pt2")
    trained = run_reporting_errors(lambda: load_model(model_path), as_json)
    run_reporting_errors(lambda: export_model(trained, dest), as_json)
    card = trained.card
    shape = f"(N, {card.channels}, {card.image_size}, {card.image_size})"
    if as_json:
        click.echo(json.dumps({"path": str(dest), "input": shape, "classes": card.classes}))
    else:
        click.echo(
            f"{dest}: uint8 images {shape} in, probabilities of {len(card.classes)} classes out"
        )


@main.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--tta",
    type=click.Choice(["none", "flip", "crops"]),
    help="Test-time augmentation [default: the model's own].",
)
@ALLOW
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@JSON
def predict(
    model_path: Path,
    paths: tuple[Path, ...],
    tta: str | None,
    allowed: tuple[str, ...],
    device: str,
    as_json: bool,
) -> None:
    """Classify image files and folders; in an ImageFolder layout, score them against the
    folders' classes (accuracy and macro-F1)."""
    from hpsearch.models import allow_modules

    run_reporting_errors(lambda: allow_modules(allowed), as_json)
    from hpsearch.trained import load_model, predict_files

    trained = run_reporting_errors(lambda: load_model(model_path, device), as_json)
    if tta is not None:
        if tta == "flip" and not trained.card.flip_invariant:
            fail("--tta flip: this model's classes are not flip-invariant", as_json=as_json)
        trained.tta = tta  # type: ignore[assignment]
    found = run_reporting_errors(lambda: predict_files(trained, list(paths)), as_json)
    names = trained.classes
    if as_json:
        click.echo(
            json.dumps({"model": str(model_path), "tta": trained.tta} | found.as_json(names))
        )
        return
    for path, cls, confidence in zip(found.paths, found.classes, found.confidence, strict=True):
        click.echo(f"{path}\t{names[cls]}\t{confidence:.3f}")
    if found.metrics is not None:
        labelled = sum(label is not None for label in found.labels)
        click.echo(
            f"accuracy {found.metrics.accuracy:.4f}, macro-F1 {found.metrics.macro_f1:.4f} "
            f"on {labelled} labelled images"
        )
