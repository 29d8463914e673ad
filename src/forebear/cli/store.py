"""Commands about the store as a whole: init, status, verify, repair, gc, upgrade,
rebuild-index, push, pull, cache and ui."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .app import Context, cli, command, json_option, pass_context
from .output import echo, emit_json, human_size


@cli.command(short_help="Make a store here (the first log makes one too).")
@click.option(
    "--db", "init_db", metavar="URL", help="Catalog database URL to record in ./forebear.toml."
)
@click.option(
    "--objects",
    "init_objects",
    metavar="URL",
    help="Object location URL to record in ./forebear.toml.",
)
@click.option(
    "--format",
    "new_format",
    type=click.IntRange(2, 3),
    help="Storage format of the new store: 3 (the default) keeps small files in packs; 2 "
    "keeps one file per object, readable by forebear versions before packs.",
)
@json_option
@pass_context
def init(
    obj: Context,
    init_db: str | None,
    init_objects: str | None,
    new_format: int | None,
    as_json: bool,
) -> None:
    """Make a store in this folder (optional: the first log makes one too).

    Without options it makes ./.forebear/, which every command and script in this folder
    and below then finds (like git); where ./forebear.toml is, the store it names. With
    --db and/or --objects it writes ./forebear.toml instead, so scripts and commands here
    use that store with no code change; credentials never go in it (they come from the
    environment: PGPASSWORD, AWS_*). The part left out (the objects of --db alone, the
    catalog of --objects alone) goes in ./.forebear/.

    \b
    Examples:
      forebear init
      forebear init --format 2
      forebear init --db postgresql+psycopg://forebear@db/forebear --objects s3://ml/forebear
    """
    from ..settings import (
        CONFIG_FILE,
        DEFAULT_DIR,
        refuse_credentials,
        settings_for_path,
        write_config,
    )

    db = init_db or obj.db
    objects = init_objects or obj.objects
    written = None
    config = Path(CONFIG_FILE).resolve()
    if db or objects:
        refuse_credentials(db, objects)  # before anything is made
        written = config
        obj.db, obj.objects = db, objects
    elif config.is_file():  # this folder's forebear.toml names its store: that one
        named = settings_for_path(config)
        obj.db, obj.objects = named.db_url, named.objects_url
    else:  # here, whatever a parent holds
        obj.objects = str(Path(DEFAULT_DIR).resolve())
    store = obj.store(create=True, new_format=new_format)
    if written is not None:  # once the store opened: a refused init writes nothing
        write_config(written, db, objects)
    status = store.status()
    info = {
        "db": status["catalog"],
        "objects": store.objects_url,
        "path": status["path"],
        "config": str(config) if config.is_file() else None,
    }
    if as_json:
        emit_json(info)
        return
    echo(f"store ready: objects at {info['objects']}, catalog at {info['db']}")
    if written:
        echo(f"wrote {written}: scripts and commands under {written.parent} use this store")
    elif info["config"]:
        echo(f"as {info['config']} says: scripts and commands under {config.parent} use it")


@command(short_help="Say which store is in use and what it holds.")
@json_option
@pass_context
def status(obj: Context, as_json: bool) -> None:
    """Say which store is in use, how it was found, and what it holds.

    \b
    Examples:
      forebear status
      forebear status --json | jq -r .path
    """
    info = obj.store().status()
    if as_json:
        emit_json(info)
        return
    cache = info["cache"]
    echo(f"store       {info['path']}")
    echo(f"found by    {info['found_by']}")
    echo(f"catalog     {info['catalog']}{'  (read-only)' if info['read_only'] else ''}")
    echo(f"objects     {info['objects']}")
    echo(f"format      {info['format_version']}, store id {info['store_id']}")
    echo(
        f"holds       {info['artifacts']} artifacts, {info['versions']} versions, "
        f"{info['runs']} runs in {info['projects']} projects"
        + (
            f"; {info['deleted_versions']} deleted versions wait for gc"
            if info.get("deleted_versions")
            else ""
        )
    )
    echo(
        f"cache       {human_size(cache['bytes'])} of {human_size(cache['max_bytes'])} "
        f"in {cache['path']} (see 'forebear cache')"
    )


@command(short_help="Re-hash stored objects; exit 1 if anything is wrong.")
@click.argument("ref", required=False)
@json_option
@pass_context
def verify(obj: Context, ref: str | None, as_json: bool) -> None:
    """Re-hash stored objects and references; exit 1 if anything is wrong.

    It checks one version (REF) or every committed version, and that the catalog's
    entries still match each version's manifest.

    \b
    Examples:
      forebear verify
      forebear verify iris-rf:best --json
    """
    problems = obj.store().verify(ref)
    if as_json:
        emit_json([{"ref": p.ref, "path": p.path, "problem": p.message} for p in problems])
    elif not problems:
        echo("all objects verified")
    else:
        for problem in problems:
            echo(str(problem), err=True)
        echo(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''}; 'forebear repair "
            "--from PATH' restores objects from files that still hold their bytes",
            err=True,
        )
    if problems:
        raise SystemExit(1)


@command(short_help="Restore missing or corrupted objects from local files.")
@click.argument("ref", required=False)
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=str),
    help="A file or folder to find the lost bytes in (matched by content, whatever the names).",
)
@json_option
@pass_context
def repair(obj: Context, ref: str | None, source: str | None, as_json: bool) -> None:
    """Store again the missing or corrupted objects of committed versions.

    Objects are taken from files under --from whose bytes match (found by content, not by
    name); manifest objects and chunk lists are rebuilt from the catalog. It says what it
    restored and what is still missing (then it exits 1).

    \b
    Examples:
      forebear repair --from data/
      forebear repair iris-raw:v2 --from /backup/iris
    """
    report = obj.store().repair(ref, source)
    if as_json:
        emit_json(report.to_dict())
    else:
        for digest, where in sorted(report.restored.items()):
            echo(f"restored {digest} from {where}")
        echo(
            f"checked {report.checked} objects; restored {len(report.restored)} "
            f"({human_size(report.restored_bytes)})"
        )
        for missing in report.missing:
            echo(f"still missing: {missing}", err=True)
    if report.missing:
        raise SystemExit(1)


@command(short_help="Purge deleted versions and free unreferenced objects.")
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option(
    "--grace",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="Purge versions deleted longer ago than this, and keep unreferenced objects "
    "younger than this (e.g. 12h, 7d; 0 for none).",
)
@json_option
@pass_context
def gc(obj: Context, dry_run: bool, grace: str, as_json: bool) -> None:
    """Purge versions deleted longer ago than the grace period (they can no longer be
    restored), then delete objects no other version references, once older than it.

    Objects a live writer holds are kept whatever their age.

    \b
    Examples:
      forebear gc --dry-run
      forebear gc --grace 1h
    """
    from ..units import parse_duration

    report = obj.store().gc(dry_run=dry_run, grace=parse_duration(grace))
    if as_json:
        emit_json(report.to_dict())
        return
    echo(report.describe())


@command(short_help="Move the store to the newest storage format (packs).")
@json_option
@pass_context
def upgrade(obj: Context, as_json: bool) -> None:
    """Move the store to the newest storage format, 3: from now on small files, chunks
    and manifests are written into pack files of tens of megabytes, so many small files
    cost a few large writes and reads. Objects stored already stay and keep being read.

    Older forebear versions refuse an upgraded store; run it where nothing else writes.

    \b
    Examples:
      forebear upgrade
      forebear --objects s3://bucket/team upgrade --json
    """
    store = obj.store()
    before = store.objects.format_version
    now = store.upgrade()
    if as_json:
        emit_json({"format_before": before, "format": now})
    elif before == now:
        echo(f"the store is in format {now} already")
    else:
        echo(f"upgraded the store from format {before} to format {now}")


@command("rebuild-index", short_help="Rebuild the catalog's pack index from the packs.")
@json_option
@pass_context
def rebuild_index(obj: Context, as_json: bool) -> None:
    """Rebuild the catalog's index of packed objects from the index copy stored beside
    each pack: after the catalog was restored from an older backup, or the object
    location copied to a new catalog.

    \b
    Examples:
      forebear rebuild-index
      forebear rebuild-index --json
    """
    packs, objects = obj.store().rebuild_index()
    if as_json:
        emit_json({"packs": packs, "objects": objects})
    else:
        echo(f"indexed {objects} objects in {packs} packs")


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
    def transfer(obj: Context, refs: tuple[str, ...], other: str, as_json: bool) -> None:
        chosen = list(refs) or None
        if direction == "push":
            report = obj.store().push(other, chosen)
        else:
            report = obj.store(create=True).pull(other, chosen)
        if as_json:
            emit_json(report.to_dict())
            return
        for source, target in report.versions.items():
            mark = "+" if target in report.created else "="
            echo(f"{mark} {source} -> {target}")
        echo(
            f"{len(report.created)} new versions, {report.runs_copied} runs, "
            f"{report.objects_copied} objects ({human_size(report.bytes_copied)}) copied"
        )

    to = "to" if direction == "push" else "from"
    verb = "Copy" if direction == "push" else "Fetch"
    transfer.__doc__ = f"""{verb} versions {to} another store, with their upstream.

    The REFs (or every version) travel with everything upstream of them, their runs, edges
    and aliases; only the objects the other store lacks are copied, each verified.

    \b
    Examples:
      forebear {direction} --{to} ../team
      forebear {direction} iris-rf:best --{to} ../team
    """
    return command(direction)(transfer)


push = _transfer_command("push")
pull = _transfer_command("pull")


@command(short_help="Show or shrink what forebear keeps outside the store.")
@click.option(
    "--prune", "prune", is_flag=True, help="Evict least recently used entries down to the bound."
)
@click.option("--max-size", metavar="SIZE", help="With --prune: the size to shrink to (e.g. 5GB).")
@click.option("--clear", is_flag=True, help="Remove everything in the cache.")
@json_option
@pass_context
def cache(obj: Context, prune: bool, max_size: str | None, clear: bool, as_json: bool) -> None:
    """Show (or shrink) what forebear keeps outside the object location.

    That is cached remote objects, versions downloaded without a destination, and the
    digests of files already hashed, bounded together by FOREBEAR_CACHE_SIZE (10 GB).

    \b
    Examples:
      forebear cache
      forebear cache --prune --max-size 2GB
      forebear cache --clear
    """
    from ..units import parse_size

    store = obj.store()
    removed = None
    if clear:
        removed = store.cache.clear()
    elif prune or max_size:
        removed = store.cache.prune(parse_size(max_size) if max_size else None)
    usage = store.cache.usage()
    report = {
        **usage.to_dict(),
        "removed_files": removed.files if removed else 0,
        "removed_bytes": removed.bytes if removed else 0,
    }
    if as_json:
        emit_json(report)
        return
    if removed is not None:
        echo(f"removed {removed.files} files ({human_size(removed.bytes)})")
    echo(
        f"{usage.root}: {human_size(usage.bytes)} of {human_size(usage.max_bytes)}: "
        f"{usage.objects} objects ({human_size(usage.object_bytes)}), "
        f"{usage.downloads} downloaded versions ({human_size(usage.download_bytes)}), "
        f"stat cache ({human_size(usage.stat_cache_bytes)})"
    )


@command(short_help="Browse the store in a local, read-only web page.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Another host name the UI answers to, e.g. behind a proxy (repeatable).",
)
@pass_context
def ui(obj: Context, host: str, port: int, allowed_hosts: tuple[str, ...]) -> None:
    """Browse artifacts, versions, runs and lineage in a local, read-only web page.

    \b
    Examples:
      forebear ui
      forebear ui --port 9000
      forebear ui --host 0.0.0.0 --allowed-host ml-box.lan
    """
    from ..web.app import check_address, serve

    store = obj.store()
    check_address(host, port)
    echo(f"forebear UI for {store.objects_url} on http://{host}:{port}/ (Ctrl-C to stop)")
    serve(store, host=host, port=port, allowed_hosts=allowed_hosts)
