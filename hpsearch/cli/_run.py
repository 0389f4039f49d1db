"""``hpsearch run``: the whole coarse-to-fine search on this machine, resumable."""

from __future__ import annotations

import json

import click

from hpsearch.cli._main import main, run_reporting_errors


@main.command()
@click.option("--spec", "spec_path", required=True, help="Study spec file, or a bundled name.")
@click.option(
    "--storage",
    default="sqlite:///hpsearch.db",
    show_default=True,
    help="Database URL: sqlite:///FILE or postgresql://USER@HOST/DB.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Local processes for trials.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec field (repeatable).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--artifacts",
    help="Directory of the trained model files [default: HPSEARCH_ARTIFACT_DIR, else beside a "
    "SQLite database].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result last.")
def run(
    spec_path: str,
    storage: str,
    workers: int,
    overrides: tuple[str, ...],
    device: str,
    artifacts: str | None,
    as_json: bool,
) -> None:
    """Run the whole search for a spec; run it again to resume."""
    from hpsearch.spec import load_spec  # pydantic, and below the rest: not for hpsearch --help

    spec = run_reporting_errors(lambda: load_spec(spec_path, overrides), as_json)
    import optuna

    from hpsearch.cli._view import SearchView, exit_unless_completed, print_result
    from hpsearch.local import run_search  # PyTorch, once it trains

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if as_json:
        summary = run_reporting_errors(
            lambda: run_search(spec, storage, workers=workers, device=device, artifacts=artifacts),
            as_json,
        )
        result = summary.json_data()
        click.echo(json.dumps(result))
    else:
        with SearchView() as view:
            summary = run_reporting_errors(
                lambda: run_search(
                    spec,
                    storage,
                    workers=workers,
                    device=device,
                    artifacts=artifacts,
                    on_progress=lambda now, item, outcome: view.update(
                        now.json_data(), item, outcome
                    ),
                ),
                as_json,
            )
        result = summary.json_data()
        print_result(view.console, result, f"stored in {storage}")
    exit_unless_completed(result)
