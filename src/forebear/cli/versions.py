"""Commands about artifacts and their versions: log, ls, show, versions, get, alias, diff."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..links import LINK_TYPES
from .app import (
    Context,
    command,
    end_quickly,
    fail,
    json_option,
    parse_moment,
    pass_context,
)
from .output import describe_chunking, echo, emit_json, human_size, shown, table

# `show` lists this many files unless asked for all.
SHOWN_FILES = 50


def parse_metadata(pairs: Sequence[str]) -> dict[str, Any]:
    from .. import jsonvalues

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


@command("log")
@click.argument("path", type=click.Path(path_type=str))
@click.option(
    "--name",
    "-n",
    help="Artifact name (default: the file's name without its last suffix, or the folder's).",
)
@click.option(
    "--type",
    "-t",
    "type_",
    default="dataset",
    show_default=True,
    help="Artifact type, e.g. dataset, model.",
)
@click.option(
    "--alias", "-a", "aliases", multiple=True, help="Alias to point at the version (repeatable)."
)
@click.option(
    "--metadata",
    "-m",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata; VALUE may be JSON (repeatable).",
)
@click.option("--description", "-d", help="Free text shown with the version.")
@click.option(
    "--project",
    "-p",
    help="Project to log into [default: $FOREBEAR_PROJECT, else 'default'].",
)
@click.option(
    "--ignore",
    "-x",
    "ignore",
    multiple=True,
    metavar="PATTERN",
    help="Leave out paths matching this gitignore pattern (repeatable); .forebearignore "
    "files apply too.",
)
@click.option(
    "--follow-symlinks", is_flag=True, help="Follow symlinks that lead out of the folder."
)
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
    project: str | None,
    ignore: tuple[str, ...],
    follow_symlinks: bool,
    as_json: bool,
) -> None:
    """Log a file or folder as a new version.

    It is recorded as a run named 'forebear log'. Logging content that an existing version
    already holds creates nothing new and says which version it is. A folder's files are
    logged without the store's own folders, paths matched by .forebearignore files
    (gitignore syntax) or --ignore, and special files such as FIFOs (listed).

    \b
    Examples:
      forebear log data/ --name iris-raw
      forebear log model.pkl --type model --alias best -m accuracy=0.97
      forebear log images/ --ignore '*.tmp' --ignore 'scratch/'
    """
    from ..artifacts import artifact_from_path
    from ..errors import ForebearWarning
    from ..runs import init

    if not Path(path).exists():
        raise click.BadParameter(f"{path!r} does not exist", param_hint="PATH")
    end_quickly()
    store = obj.store(create=True)  # first: a store made now is never logged either
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForebearWarning)  # said below, in one line
        artifact = artifact_from_path(
            path,
            name,
            type_,
            description,
            parse_metadata(metadata),
            follow_outside_symlinks=follow_symlinks,
            ignore=list(ignore),
        )
    if artifact.skipped:
        listed = ", ".join(f"{shown(p)} ({kind})" for p, kind in artifact.skipped[:5])
        more = f" and {len(artifact.skipped) - 5} more" if len(artifact.skipped) > 5 else ""
        echo(
            f"forebear: skipped {len(artifact.skipped)} special files with no bytes to store: "
            f"{listed}{more}",
            err=True,
        )
    with init(  # recorded whatever FOREBEAR_MODE says: that is for scripts' runs
        project, "forebear log", store=store, mode="online", config_defaults=False
    ) as run:
        version = run.log_artifact(artifact, aliases=list(aliases))
    unchanged = version.created_by != run.id
    if as_json:
        emit_json({**version.to_dict(), "unchanged": unchanged})
        return
    where = f"{version.project}/{version.ref}"
    if unchanged:
        echo(f"unchanged: {where} already holds this content (this log is recorded as a producer)")
    else:
        echo(
            f"{where} ({version.file_count} files, {human_size(version.size)}) "
            f"[{', '.join(version.aliases)}]"
        )


@command("ls")
@click.option("--type", "-t", "type_", help="Only artifacts of this type.")
@click.option("--project", "-p", help="Only artifacts of this project.")
@click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="Only versions with this tag (repeatable)."
)
@click.option("--deleted", is_flag=True, help="Also artifacts whose every version is deleted.")
@json_option
@pass_context
def ls(
    obj: Context,
    type_: str | None,
    project: str | None,
    tags: tuple[str, ...],
    deleted: bool,
    as_json: bool,
) -> None:
    """List artifacts with their latest version.

    With --tag, each artifact's newest version that has the tags.

    \b
    Examples:
      forebear ls
      forebear ls --type model --project iris
      forebear ls --tag baseline
      forebear ls --json | jq -r '.[].ref'
    """
    store = obj.store()
    latest = store.artifacts(project=project, type=type_, tags=tags, include_deleted=deleted)
    if as_json:
        emit_json([v.to_dict() for v in latest])
        return
    if not latest:
        echo(_nothing_listed(store, type_, project, tags))
        return
    table(
        ["project", "name", "type", "latest", "aliases", "files", "size"],
        [
            (
                v.project,
                v.name,
                v.type,
                f"{v.version} (deleted)" if v.deleted else v.version,
                ", ".join(v.aliases),
                v.file_count,
                human_size(v.size),
            )
            for v in latest
        ],
    )


def _nothing_listed(
    store: Any, type_: str | None, project: str | None, tags: tuple[str, ...] = ()
) -> str:
    if tags:
        return f"no version has the tags {', '.join(tags)} (add one with 'forebear tag REF TAG')"
    if type_ is None and project is None:
        return "no artifacts yet: log one with 'forebear log PATH --name NAME'"
    every = store.artifacts()
    if project is not None and all(v.project != project for v in every):
        projects = ", ".join(sorted({v.project for v in every})) or "none yet"
        return f"no project {project!r} has artifacts (projects: {projects})"
    types = ", ".join(sorted({v.type for v in every if project in (None, v.project)})) or "none"
    where = f" in project {project!r}" if project is not None else ""
    return f"no artifact of type {type_!r}{where} (types here: {types})"


@command(short_help="Show one version: metadata, runs and files.")
@click.argument("ref")
@click.option(
    "--all",
    "all_files",
    is_flag=True,
    help=f"List every file (by default the first {SHOWN_FILES}).",
)
@click.option(
    "--at",
    "at",
    metavar="WHEN",
    help="The version REF named then: an ISO date or time (UTC), or a duration ago (7d).",
)
@json_option
@pass_context
def show(obj: Context, ref: str, all_files: bool, at: str | None, as_json: bool) -> None:
    """Show one version: metadata, producers, consumers and files.

    REF is NAME, NAME:v3, NAME:ALIAS or PROJECT/NAME:REF (see 'forebear --help').

    \b
    Examples:
      forebear show iris-rf:best
      forebear show iris/iris-raw:v2 --all
      forebear show registry/fraud-detector:production --at 2026-11-24T12:00
    """
    version = obj.store().artifact(ref, at=parse_moment(at))
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
    echo(f"{version.project}/{version.ref}  [{version.type}]")
    echo(f"  digest      {version.digest} ({version.hash_algorithm})")
    echo(f"  aliases     {', '.join(version.aliases) or '-'}")
    source = version.source
    if source is not None:
        echo(f"  links       {source.qualified_ref}")
    if version.tags:
        echo(f"  tags        {', '.join(version.tags)}")
    echo(f"  size        {human_size(version.size)} in {version.file_count} files")
    if version.new_bytes is not None and version.shared_bytes is not None:
        echo(f"  new         {human_size(version.new_bytes)} stored when it was logged")
        echo(f"  shared      {human_size(version.shared_bytes)} already stored (deduplicated)")
    if version.chunking is not None:
        echo(f"  chunking    {describe_chunking(version.chunking)}")
    echo(f"  created     {version.created_at:%Y-%m-%d %H:%M:%S} UTC")
    if version.ttl is not None:
        expires = version.created_at + version.ttl
        echo(f"  expires     {expires:%Y-%m-%d %H:%M:%S} UTC (TTL; 'forebear prune')")
    if version.description:
        echo(f"  description {version.description}")
    if version.metadata:
        echo(f"  metadata    {json.dumps(version.metadata, sort_keys=True)}")
    for label, runs in (("produced by", producers), ("used by", consumers)):
        names = ", ".join(f"{r['name']} ({r['id']})" for r in runs) or "-"
        echo(f"  {label:<11} {names}")
    purged = {r.path: r for r in version.redactions()}
    for path, redaction in purged.items():
        echo(f"  redacted    {shown(path)}: purged by {redaction.actor} ({redaction.reason})")
    echo("  files:")
    limit = None if all_files else SHOWN_FILES
    entries = version.iter_entries() if limit is None else iter(version.entries(0, limit))
    for entry in entries:
        where = f"  -> {entry.uri}" if entry.uri else ""
        mark = "  [purged]" if entry.path in purged else ""
        echo(f"    {shown(entry.path)}  {human_size(entry.size)}{shown(where)}{mark}")
    if limit is not None and version.file_count > limit:
        echo(
            f"    ... and {version.file_count - limit} more: "
            f"'forebear show {version.qualified_ref} --all' lists them (or --json)"
        )


@command()
@click.argument("name")
@click.option("--project", "-p", help="Project of the artifact.")
@click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="Only versions with this tag (repeatable)."
)
@click.option("--deleted", is_flag=True, help="Also deleted versions (restorable until gc).")
@json_option
@pass_context
def versions(
    obj: Context,
    name: str,
    project: str | None,
    tags: tuple[str, ...],
    deleted: bool,
    as_json: bool,
) -> None:
    """List every version of an artifact, oldest first.

    \b
    Examples:
      forebear versions iris-raw
      forebear versions iris-rf --project iris --json
      forebear versions ckpt --deleted
    """
    found = obj.store().versions(name, project=project, tags=tags, include_deleted=deleted)
    if as_json:
        emit_json([v.to_dict() for v in found])
        return
    table(
        ["version", "aliases", "files", "size", "new", "created", "digest"],
        [
            (
                f"{v.version} (deleted)" if v.deleted else v.version,
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


@command()
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
@click.option("--prefix", metavar="PATH", help="Only the files whose path starts with PATH.")
@click.option(
    "--checkout",
    is_flag=True,
    help="Make DEST exactly the version: remove every other file in it.",
)
@json_option
@pass_context
def get(
    obj: Context,
    ref: str,
    dest: str | None,
    link: str,
    prefix: str | None,
    checkout: bool,
    as_json: bool,
) -> None:
    """Download a verified copy of a version into DEST.

    REF is NAME, NAME:v3, NAME:ALIAS or PROJECT/NAME:REF (see 'forebear --help'). Without
    DEST the copy goes to the store's cache (see 'forebear cache'). Files already in DEST
    are re-verified and replaced when they differ.

    \b
    Examples:
      forebear get iris-raw data/
      forebear get iris-rf:best models/ --link hardlink
      forebear get images:v3 data/ --prefix train/
      forebear get iris-raw:v2 data/ --checkout
    """
    version = obj.store().artifact(ref)
    if checkout:
        if dest is None or prefix is not None:
            fail("--checkout needs DEST, and makes it the whole version (no --prefix)")
        path = version.checkout(dest, link=link)
    else:
        path = version.download(dest, link=link, path_prefix=prefix)
    if as_json:
        emit_json({"ref": version.ref, "path": str(path), "files": version.files()})
    else:
        echo(str(path))


@command()
@click.argument("ref")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--remove", is_flag=True, help="Remove the alias from that version instead.")
@click.option("--reason", metavar="TEXT", help="Why it moves (kept in the alias history).")
@click.option("--force", is_flag=True, help="Move a protected alias (see 'forebear protect').")
@json_option
@pass_context
def alias(
    obj: Context,
    ref: str,
    alias_name: str,
    remove: bool,
    reason: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Point ALIAS at the version REF names.

    Every move is kept in the artifact's alias history, with who moved it and why
    ('forebear history NAME'). A protected alias moves only with --force.

    \b
    Examples:
      forebear alias iris-rf:v3 best
      forebear alias iris-rf:v3 best --remove
      forebear alias registry/fraud-detector:v4 production --force --reason "passed shadow test"
    """
    version = obj.store().artifact(ref)
    if remove:
        version.remove_alias(alias_name, reason=reason, force=force)
    else:
        version.add_alias(alias_name, reason=reason, force=force)
    if as_json:
        emit_json(
            {
                "ref": version.ref,
                "alias": alias_name,
                "removed": remove,
                "aliases": version.aliases,
                "reason": reason,
            }
        )
    elif remove:
        echo(f"removed {alias_name!r} from {version.qualified_ref}")
    else:
        echo(f"{version.project}/{version.name}:{alias_name} -> {version.qualified_ref}")


@command(short_help="Show files added, removed and modified between versions.")
@click.argument("old")
@click.argument("new")
@json_option
@pass_context
def diff(obj: Context, old: str, new: str, as_json: bool) -> None:
    """Show the files added (+), removed (-) and modified (M) from OLD to NEW.

    \b
    Examples:
      forebear diff iris-raw:v1 iris-raw:v2
      forebear diff iris-raw:v0 iris-raw --json
    """
    store = obj.store()
    before = store.artifact(old)
    after = store.artifact(new)
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
        echo(f"{before.ref} and {after.ref} have the same entries")
        return
    for mark, paths in (("+", changes.added), ("-", changes.removed), ("M", changes.modified)):
        for path in paths:
            echo(f"{mark} {shown(path)}")
