"""The `forebear` command: thin commands over the public Python API.

Every user mistake ends with one line on stderr and a non-zero exit; only bugs show a
traceback. Heavy imports happen inside commands so `forebear --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .errors import ForebearError
from .links import LINK_TYPES
from .units import human_size

if TYPE_CHECKING:
    from .store import Store


class Context:
    def __init__(self, db: str | None, objects: str | None) -> None:
        self.db = db
        self.objects = objects
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from .store import Store

            self._store = Store(self.db, self.objects)
        return self._store


pass_context = click.make_pass_decorator(Context)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def describe_chunking(chunking: dict[str, Any]) -> str:
    return (
        f"files of {human_size(chunking['threshold'])} or more, in chunks of "
        f"{human_size(chunking['avg_size'])} on average ({chunking['algorithm']})"
    )


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    grid = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        grid.add_row(*(str(c) if c is not None else "" for c in row))
    Console(soft_wrap=True).print(grid)


def parse_metadata(pairs: Sequence[str]) -> dict[str, Any]:
    from . import jsonvalues

    metadata: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--metadata")
        try:
            metadata[key] = jsonvalues.loads(raw, f"--metadata {key}")
        except json.JSONDecodeError:  # not JSON: kept as text
            metadata[key] = raw
    return metadata


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="FOREBEAR_DB", help="Catalog database URL (env FOREBEAR_DB).")
@click.option(
    "--objects", envvar="FOREBEAR_OBJECTS", help="Object location URL (env FOREBEAR_OBJECTS)."
)
@click.version_option(package_name="forebear")
@click.pass_context
def cli(ctx: click.Context, db: str | None, objects: str | None) -> None:
    """Version datasets and models, and remember where each came from.

    Without --db/--objects the store is FOREBEAR_DIR, else ./.forebear/.
    """
    from .context import never_record, url_password

    for url in (db, objects):  # whatever they hold, a run's context never records them
        never_record(url_password(url))
    ctx.obj = Context(db, objects)


@cli.command()
@click.option("--db", "init_db", help="Catalog database URL to record for this project.")
@click.option("--objects", "init_objects", help="Object location URL to record.")
@json_option
@pass_context
def init(obj: Context, init_db: str | None, init_objects: str | None, as_json: bool) -> None:
    """Create the store (optional: any write creates it).

    With --db and/or --objects (here or before the command), also write ./forebear.toml so
    every script and command under this folder uses that store with no code change.
    Credentials never go in it: they come from the environment (PGPASSWORD, AWS_*).
    """
    from .config import CONFIG_FILE, write_config

    db = init_db or obj.db
    objects = init_objects or obj.objects
    written = None
    if db or objects:
        written = Path(CONFIG_FILE).resolve()
        write_config(written, db, objects)
        obj.db, obj.objects = db, objects
    store = obj.store
    info = {
        "db": _redacted(store.db_url),
        "objects": store.objects_url,
        "config": str(written) if written else None,
    }
    if as_json:
        emit_json(info)
        return
    click.echo(f"store ready: objects at {info['objects']}, catalog at {info['db']}")
    if written:
        click.echo(f"wrote {written}: scripts and commands under {written.parent} use this store")


def _redacted(url: str) -> str:
    from .db.engine import redact

    return redact(url)


@cli.command("log")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--name", "-n", help="Artifact name (default: the file or folder name).")
@click.option("--type", "-t", "type_", default="dataset", show_default=True)
@click.option("--alias", "-a", "aliases", multiple=True, help="Alias to set (repeatable).")
@click.option("--metadata", "-m", multiple=True, help="key=value (JSON values allowed).")
@click.option("--description", "-d", help="Free text shown with the version.")
@click.option("--project", "-p", envvar="FOREBEAR_PROJECT", default="default", show_default=True)
@click.option("--follow-symlinks", is_flag=True, help="Follow symlinks that leave the folder.")
@json_option
@pass_context
def log_command(
    obj: Context,
    path: str,
    name: str | None,
    type_: str,
    aliases: tuple[str, ...],
    metadata: tuple[str, ...],
    description: str | None,
    project: str,
    follow_symlinks: bool,
    as_json: bool,
) -> None:
    """Log a file or folder as a new version (recorded as a run named 'forebear log')."""
    from .run import artifact_from_path, init

    if not Path(path).exists():
        raise click.BadParameter(f"{path!r} does not exist", param_hint="PATH")
    artifact = artifact_from_path(
        path,
        name,
        type_,
        description,
        parse_metadata(metadata),
        follow_outside_symlinks=follow_symlinks,
    )
    with init(project=project, name="forebear log", store=obj.store) as run:
        version = run.log_artifact(artifact, aliases=list(aliases))
    if as_json:
        emit_json(version.to_dict())
    else:
        aliases_text = ", ".join(version.aliases)
        click.echo(
            f"{version.project}/{version.ref} ({version.file_count} files, "
            f"{human_size(version.size)}) [{aliases_text}]"
        )


@cli.command("ls")
@click.option("--type", "-t", "type_", help="Only artifacts of this type.")
@click.option("--project", "-p", help="Only artifacts of this project.")
@json_option
@pass_context
def ls(obj: Context, type_: str | None, project: str | None, as_json: bool) -> None:
    """List artifacts with their latest version."""
    latest = obj.store.artifacts(project=project, type=type_)
    if as_json:
        emit_json([v.to_dict() for v in latest])
        return
    if not latest:
        click.echo("no artifacts yet: log one with 'forebear log PATH --name NAME'")
        return
    table(
        ["project", "name", "type", "latest", "aliases", "files", "size"],
        [
            (
                v.project,
                v.name,
                v.type,
                v.version,
                ", ".join(v.aliases),
                v.file_count,
                human_size(v.size),
            )
            for v in latest
        ],
    )


@cli.command()
@click.argument("ref")
@json_option
@pass_context
def show(obj: Context, ref: str, as_json: bool) -> None:
    """Show one version: metadata, producers, consumers and files."""
    version = obj.store.artifact(ref)
    producers = [r.to_dict() for r in version.producers]
    consumers = [r.to_dict() for r in version.consumers]
    if as_json:
        emit_json(
            {
                **version.to_dict(),
                "producers": producers,
                "consumers": consumers,
                "entries": [e.to_dict() for e in version.iter_entries()],
            }
        )
        return
    click.echo(f"{version.project}/{version.ref}  [{version.type}]")
    click.echo(f"  digest      {version.digest} ({version.hash_algorithm})")
    click.echo(f"  aliases     {', '.join(version.aliases) or '-'}")
    click.echo(f"  size        {human_size(version.size)} in {version.file_count} files")
    if version.new_bytes is not None and version.shared_bytes is not None:
        click.echo(f"  new         {human_size(version.new_bytes)} stored when it was logged")
        click.echo(
            f"  shared      {human_size(version.shared_bytes)} already stored (deduplicated)"
        )
    if version.chunking is not None:
        click.echo(f"  chunking    {describe_chunking(version.chunking)}")
    click.echo(f"  created     {version.created_at:%Y-%m-%d %H:%M:%S} UTC")
    if version.description:
        click.echo(f"  description {version.description}")
    if version.metadata:
        click.echo(f"  metadata    {json.dumps(version.metadata, sort_keys=True)}")
    for label, runs in (("produced by", producers), ("used by", consumers)):
        names = ", ".join(f"{r['name']} ({r['id']})" for r in runs) or "-"
        click.echo(f"  {label:<11} {names}")
    click.echo("  files:")
    for entry in version.iter_entries():
        where = f"  -> {entry.uri}" if entry.uri else ""
        click.echo(f"    {entry.path}  {human_size(entry.size)}{where}")


@cli.command()
@click.argument("name")
@click.option("--project", "-p", help="Project of the artifact.")
@json_option
@pass_context
def versions(obj: Context, name: str, project: str | None, as_json: bool) -> None:
    """List every version of an artifact."""
    found = obj.store.versions(name, project=project)
    if as_json:
        emit_json([v.to_dict() for v in found])
        return
    table(
        ["version", "aliases", "files", "size", "new", "created", "digest"],
        [
            (
                v.version,
                ", ".join(v.aliases),
                v.file_count,
                human_size(v.size),
                "-" if v.new_bytes is None else human_size(v.new_bytes),
                f"{v.created_at:%Y-%m-%d %H:%M:%S}",
                v.digest,
            )
            for v in found
        ],
    )


@cli.command()
@click.argument("ref")
@click.argument("dest", required=False, type=click.Path(path_type=str))
@click.option(
    "--link",
    type=click.Choice(LINK_TYPES),
    default="auto",
    show_default=True,
    help="How files are placed: auto = reflink where possible, else copy; hardlink and "
    "symlink give read-only files that are the stored objects (replace, never edit them).",
)
@json_option
@pass_context
def get(obj: Context, ref: str, dest: str | None, link: str, as_json: bool) -> None:
    """Download a verified copy of a version into DEST (default: the store's cache)."""
    version = obj.store.artifact(ref)
    path = version.download(dest, link=link)
    if as_json:
        emit_json({"ref": version.ref, "path": str(path), "files": version.files()})
    else:
        click.echo(str(path))


@cli.command()
@click.argument("ref")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--remove", is_flag=True, help="Remove the alias instead of setting it.")
@json_option
@pass_context
def alias(obj: Context, ref: str, alias_name: str, remove: bool, as_json: bool) -> None:
    """Point ALIAS at the version REF names (or remove it from that version)."""
    version = obj.store.artifact(ref)
    if remove:
        version.remove_alias(alias_name)
    else:
        version.add_alias(alias_name)
    if as_json:
        emit_json(
            {"ref": version.ref, "alias": alias_name, "removed": remove, "aliases": version.aliases}
        )
    elif remove:
        click.echo(f"removed {alias_name!r} from {version.ref}")
    else:
        click.echo(f"{version.name}:{alias_name} -> {version.ref}")


@cli.command()
@click.argument("old")
@click.argument("new")
@json_option
@pass_context
def diff(obj: Context, old: str, new: str, as_json: bool) -> None:
    """Show entries added, removed and modified going from OLD to NEW."""
    before = obj.store.artifact(old)
    after = obj.store.artifact(new)
    changes = before.diff(after)
    if as_json:
        emit_json(
            {
                "from": before.ref,
                "to": after.ref,
                "added": changes.added,
                "removed": changes.removed,
                "modified": changes.modified,
            }
        )
        return
    if not changes:
        click.echo(f"{before.ref} and {after.ref} have the same entries")
        return
    for mark, paths in (("+", changes.added), ("-", changes.removed), ("M", changes.modified)):
        for path in paths:
            click.echo(f"{mark} {path}")


@cli.command()
@click.argument("ref")
@click.option("--up", "direction", flag_value="up", default=True, help="What REF came from.")
@click.option("--down", "direction", flag_value="down", help="What was made from REF.")
@click.option("--both", "direction", flag_value="both", help="Both directions.")
@click.option("--depth", type=click.IntRange(min=0), help="Artifact hops to follow.")
@click.option("--type", "-t", "type_", help="Show only versions of this type (and REF).")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=str),
    help="Write a diagram (.svg .png .pdf .dot .mmd .json).",
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
    """Show where REF came from (--up), where it went (--down), or both."""
    graph = obj.store.lineage(
        ref,
        upstream=direction in ("up", "both"),
        downstream=direction in ("down", "both"),
        depth=depth,
        type=type_,
    )
    if output:
        path = graph.render(output, max_nodes=max_nodes)
        click.echo(f"wrote {path}")
    elif as_json:
        click.echo(graph.to_json())
    else:
        click.echo(graph.to_text(), nl=False)


@cli.command()
@click.option("--project", "-p", help="Only runs of this project.")
@json_option
@pass_context
def runs(obj: Context, project: str | None, as_json: bool) -> None:
    """List runs, oldest first."""
    found = obj.store.runs(project=project)
    if as_json:
        emit_json([r.to_dict() for r in found])
        return
    table(
        ["id", "project", "name", "status", "started"],
        [(r.id, r.project, r.name, r.status, f"{r.started_at:%Y-%m-%d %H:%M:%S}") for r in found],
    )


@cli.command("run")
@click.argument("run_id")
@json_option
@pass_context
def run_command(obj: Context, run_id: str, as_json: bool) -> None:
    """Show one run: config, summary, context, inputs and outputs."""
    run = obj.store.run(run_id)
    inputs = [v.ref for v in run.inputs]
    outputs = [v.ref for v in run.outputs]
    if as_json:
        emit_json({**run.to_dict(), "inputs": inputs, "outputs": outputs})
        return
    click.echo(f"run {run.id}  {run.project}/{run.name}  [{run.status}]")
    click.echo(f"  started  {run.started_at:%Y-%m-%d %H:%M:%S} UTC")
    if run.ended_at:
        click.echo(f"  ended    {run.ended_at:%Y-%m-%d %H:%M:%S} UTC")
    click.echo(f"  config   {json.dumps(run.config, sort_keys=True)}")
    click.echo(f"  summary  {json.dumps(run.summary, sort_keys=True)}")
    git = run.context.get("git") or {}
    if git:
        dirty = " (dirty)" if git.get("dirty") else ""
        click.echo(f"  git      {git.get('commit')}{dirty}")
    click.echo(f"  command  {' '.join(run.context.get('argv', []))}")
    click.echo(f"  host     {run.context.get('host')}  python {run.context.get('python')}")
    click.echo(f"  inputs   {', '.join(inputs) or '-'}")
    click.echo(f"  outputs  {', '.join(outputs) or '-'}")


@cli.command()
@click.argument("ref", required=False)
@json_option
@pass_context
def verify(obj: Context, ref: str | None, as_json: bool) -> None:
    """Re-hash stored objects and references; exit 1 if anything is wrong."""
    problems = obj.store.verify(ref)
    if as_json:
        emit_json([{"ref": p.ref, "path": p.path, "problem": p.message} for p in problems])
    elif not problems:
        click.echo("all objects verified")
    else:
        for problem in problems:
            click.echo(str(problem), err=True)
    if problems:
        raise SystemExit(1)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option(
    "--grace",
    default="7d",
    show_default=True,
    help="Keep unreferenced objects younger than this (e.g. 12h, 7d; 0 for none).",
)
@json_option
@pass_context
def gc(obj: Context, dry_run: bool, grace: str, as_json: bool) -> None:
    """Delete objects no committed version references, once older than the grace period."""
    from .units import parse_duration

    report = obj.store.gc(dry_run=dry_run, grace=parse_duration(grace))
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(report.describe())


def _transfer_command(direction: str) -> Any:
    @click.argument("refs", nargs=-1, metavar="[REF]...")
    @click.option(
        f"--{'to' if direction == 'push' else 'from'}",
        "other",
        required=True,
        help="The other store: a store folder or a forebear.toml.",
    )
    @json_option
    @pass_context
    def command(obj: Context, refs: tuple[str, ...], other: str, as_json: bool) -> None:
        chosen = list(refs) or None
        if direction == "push":
            report = obj.store.push(other, chosen)
        else:
            report = obj.store.pull(other, chosen)
        if as_json:
            emit_json(report.to_dict())
            return
        for source, target in report.versions.items():
            mark = "+" if target in report.created else "="
            click.echo(f"{mark} {source} -> {target}")
        click.echo(
            f"{len(report.created)} new versions, {report.runs_copied} runs, "
            f"{report.objects_copied} objects ({human_size(report.bytes_copied)}) copied"
        )

    command.__doc__ = (
        f"{'Copy' if direction == 'push' else 'Fetch'} versions (REFs, or all) with their "
        f"upstream, runs, edges and aliases {'to' if direction == 'push' else 'from'} "
        "another store; only missing objects travel."
    )
    return cli.command(direction)(command)


push = _transfer_command("push")
pull = _transfer_command("pull")


@cli.command()
@click.option("--prune", "prune", is_flag=True, help="Evict least recently used objects.")
@click.option("--max-size", help="With --prune: the size to shrink to (e.g. 5GB).")
@click.option("--clear", is_flag=True, help="Remove every cached object.")
@json_option
@pass_context
def cache(obj: Context, prune: bool, max_size: str | None, clear: bool, as_json: bool) -> None:
    """Show (or prune) the local cache of objects downloaded from a remote store."""
    from .units import parse_size

    store = obj.store
    removed = None
    if clear:
        removed = store.cache.clear()
    elif prune or max_size:
        removed = store.cache.prune(parse_size(max_size) if max_size else None)
    usage = store.cache.usage()
    report = {
        "path": str(usage.root),
        "files": usage.files,
        "bytes": usage.bytes,
        "max_bytes": usage.max_bytes,
        "removed_files": removed.files if removed else 0,
        "removed_bytes": removed.bytes if removed else 0,
    }
    if as_json:
        emit_json(report)
        return
    if removed is not None:
        click.echo(f"removed {removed.files} objects ({human_size(removed.bytes)})")
    click.echo(
        f"{usage.root}: {usage.files} objects, {human_size(usage.bytes)} "
        f"of {human_size(usage.max_bytes)}"
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Another host name the UI answers to, e.g. behind a proxy (repeatable).",
)
@pass_context
def ui(obj: Context, host: str, port: int, allowed_hosts: tuple[str, ...]) -> None:
    """Browse artifacts, versions, runs and lineage in a local, read-only web page."""
    from .web.app import check_address, serve

    store = obj.store
    check_address(host, port)
    click.echo(f"forebear UI for {store.objects_url} on http://{host}:{port}/ (Ctrl-C to stop)")
    serve(store, host=host, port=port, allowed_hosts=allowed_hosts)


def fail(message: str, code: int = 1) -> NoReturn:
    one_line = " ".join(message.split())  # backends' messages may span several lines
    click.echo(f"forebear: error: {one_line}", err=True)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one line on stderr for every user mistake, never a traceback."""
    args = list(argv) if argv is not None else sys.argv[1:]
    if not args:
        args = ["--help"]
    try:
        code = cli.main(args=args, prog_name="forebear", standalone_mode=False)
    except ForebearError as exc:
        fail(str(exc))
    except click.UsageError as exc:
        hint = f" (see 'forebear {exc.ctx.info_name} --help')" if exc.ctx else ""
        if exc.ctx is not None and exc.ctx.parent is None:
            hint = " (see 'forebear --help')"
        fail(f"{exc.format_message()}{hint}", exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        fail("aborted", 130)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()
        raise SystemExit(1) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
