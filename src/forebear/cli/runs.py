"""Commands about where versions came from: lineage, runs, run."""

from __future__ import annotations

import json

import click

from .app import Context, command, json_option, pass_context
from .output import echo, emit_json, emit_json_list, table


@command(short_help="Show where a version came from, or where it went.")
@click.argument("ref")
@click.option(
    "--up", "direction", flag_value="up", default=True, help="What REF came from (the default)."
)
@click.option("--down", "direction", flag_value="down", help="What was made from REF.")
@click.option("--both", "direction", flag_value="both", help="Both directions.")
@click.option("--depth", type=click.IntRange(min=0), help="Artifact hops to follow (default: all).")
@click.option("--type", "-t", "type_", help="Show only versions of this type (and REF).")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=str),
    help="Write a diagram (.svg .png .pdf .dot .mmd .json) instead of the text tree.",
)
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Diagram size bound; farther nodes become '+N more'.",
)
@json_option
@pass_context
def lineage(
    obj: Context,
    ref: str,
    direction: str,
    depth: int | None,
    type_: str | None,
    output: str | None,
    max_nodes: int,
    as_json: bool,
) -> None:
    """Show where REF came from (--up), where it went (--down), or both.

    REF is NAME, NAME:v3, NAME:ALIAS or PROJECT/NAME:REF (see 'forebear --help').
    Without -o it prints an indented tree of versions and runs.

    \b
    Examples:
      forebear lineage iris-rf:best                which data produced this model
      forebear lineage iris-raw --down --type model   which models this data reached
      forebear lineage iris-rf -o lineage.svg      a diagram (needs Graphviz's dot)
    """
    graph = obj.store().lineage(
        ref,
        upstream=direction in ("up", "both"),
        downstream=direction in ("down", "both"),
        depth=depth,
        type=type_,
    )
    if output:
        path = graph.render(output, max_nodes=max_nodes)
        echo(f"wrote {path}")
    elif as_json:
        echo(graph.to_json())
    else:
        echo(graph.to_text(), nl=False)


@command()
@click.option("--project", "-p", help="Only runs of this project.")
@click.option("--deleted", is_flag=True, help="Also deleted runs.")
@click.option(
    "--limit", "-n", type=click.IntRange(min=0), help="Only the N newest (default: every run)."
)
@json_option
@pass_context
def runs(
    obj: Context, project: str | None, deleted: bool, limit: int | None, as_json: bool
) -> None:
    """List runs, newest first.

    \b
    Examples:
      forebear runs
      forebear runs -n 10
      forebear runs --project iris --json
    """
    found = obj.store().iter_runs(project, include_deleted=deleted, newest_first=True, limit=limit)
    if as_json:
        emit_json_list(r.to_dict() for r in found)
        return
    table(
        ["id", "project", "name", "status", "started"],
        [
            (
                r.id,
                r.project,
                r.name,
                f"{r.status} (deleted)" if r.deleted else r.status,
                f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            )
            for r in found
        ],
    )


@command("run", short_help="Show one run: config, summary, context, inputs, outputs.")
@click.argument("run_id")
@click.option("--history", is_flag=True, help="Print the values logged by step instead.")
@json_option
@pass_context
def run_command(obj: Context, run_id: str, history: bool, as_json: bool) -> None:
    """Show one run: config, summary (the last values logged), context, inputs and outputs.

    \b
    Examples:
      forebear run 3cf5oxnw
      forebear run 3cf5oxnw --json
      forebear run 3cf5oxnw --history
    """
    run = obj.store().run(run_id)
    if history:
        rows = run.history()
        if as_json:
            emit_json(rows)
            return
        keys = sorted({key for row in rows for key in row} - {"step"})
        if not rows:
            echo("no values logged with a step")
            return
        table(
            ["step", *keys],
            [
                (str(row["step"]), *(f"{row[k]:.6g}" if k in row else "" for k in keys))
                for row in rows
            ],
        )
        return
    inputs = [v.ref for v in run.inputs]
    outputs = [v.ref for v in run.outputs]
    if as_json:
        emit_json({**run.to_dict(), "inputs": inputs, "outputs": outputs})
        return
    echo(f"run {run.id}  {run.project}/{run.name}  [{run.status}]")
    echo(f"  started  {run.started_at:%Y-%m-%d %H:%M:%S} UTC")
    if run.ended_at:
        echo(f"  ended    {run.ended_at:%Y-%m-%d %H:%M:%S} UTC")
    echo(f"  config   {json.dumps(run.config, sort_keys=True)}")
    echo(f"  summary  {json.dumps(run.summary, sort_keys=True)}")
    git = run.context.get("git") or {}
    if git:
        dirty = " (dirty)" if git.get("dirty") else ""
        echo(f"  git      {git.get('commit')}{dirty}")
    echo(f"  command  {' '.join(run.context.get('argv', []))}")
    echo(f"  host     {run.context.get('host')}  python {run.context.get('python')}")
    echo(f"  inputs   {', '.join(inputs) or '-'}")
    echo(f"  outputs  {', '.join(outputs) or '-'}")
