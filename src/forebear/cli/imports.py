"""Bringing history in from other tools: ``forebear import mlflow``."""

from __future__ import annotations

import os

import click

from .app import Context, cli, json_option, pass_context, store_options
from .output import echo, emit_json


@cli.group("import", short_help="Bring experiments, runs and models in from MLflow.")
def import_group() -> None:
    """Import another tool's history into the store; importing again changes nothing.

    \b
    Examples:
      forebear import mlflow --tracking-uri sqlite:///mlflow.db
      forebear import mlflow --tracking-uri http://mlflow.internal:5000 -e churn
    """


@import_group.command("mlflow", short_help="Import an MLflow tracking store.")
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    metavar="URI",
    help="Where MLflow keeps runs: sqlite:///mlflow.db, ./mlruns, http://host:5000 ... "
    "(default: $MLFLOW_TRACKING_URI, else mlflow.db or mlruns/ in this folder).",
)
@click.option(
    "--registry-uri",
    envvar="MLFLOW_REGISTRY_URI",
    metavar="URI",
    help="Where MLflow keeps registered models (default: the tracking URI).",
)
@click.option(
    "--experiment", "-e", "experiments", multiple=True, metavar="NAME",
    help="Import only this experiment (repeatable; default: every active one).",
)  # fmt: skip
@json_option
@store_options
@pass_context
def import_mlflow(
    obj: Context,
    tracking_uri: str | None,
    registry_uri: str | None,
    experiments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Import MLflow experiments as projects, runs as runs (params as config, every metric
    step as history, the last values as summary, tags, status and times), each run's
    top-level artifacts and logged models as versions it logged, and registered model
    versions as links in registry/MODEL with their aliases.

    Runs still running in MLflow are left for a later import. Reads through MLflow's own
    client (pip install 'forebear[mlflow]').

    \b
    Examples:
      forebear import mlflow --tracking-uri sqlite:///mlflow.db
      MLFLOW_TRACKING_URI=http://mlflow.internal:5000 forebear import mlflow --json
    """
    from ..mlflow_import import check_tracking_uri
    from ..mlflow_import import import_mlflow as run_import

    # MLflow retries a server that does not answer for minutes by default; say so sooner
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")

    def progress(name: str) -> None:
        if not as_json:
            echo(f"importing {name}", err=True)

    uri = check_tracking_uri(tracking_uri)
    if uri != tracking_uri and not as_json:
        echo(f"reading {uri}, where MLflow logs by default in this folder", err=True)
    report = run_import(
        uri,
        store=obj.store(create=True),
        registry_uri=registry_uri,
        experiments=list(experiments) or None,
        progress=progress,
    )
    if as_json:
        emit_json(report.to_dict())
        return
    for note in report.notes:
        echo(f"note: {note}", err=True)
    echo(report.describe())
