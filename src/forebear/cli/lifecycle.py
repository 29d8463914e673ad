"""Commands that change what was committed: edit, tag, delete, restore, retention, prune,
which, purge, audit (and delete-run)."""

from __future__ import annotations

import datetime as dt
import json

import click

from .app import Context, command, fail, json_option, parse_moment, pass_context
from .output import echo, emit_json, table


def _metadata(pairs: tuple[str, ...]) -> dict[str, object]:
    from .. import jsonvalues

    found: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--metadata {pair!r} is not KEY=VALUE")
        try:
            found[key] = jsonvalues.loads(value, f"metadata {key!r}")
        except ValueError:
            found[key] = value  # not JSON: the text itself
    return found


@command(short_help="Change a version's description, metadata or TTL.")
@click.argument("ref")
@click.option("--description", "-d", help="New description ('' clears it).")
@click.option(
    "--metadata",
    "-m",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set one metadata key; VALUE may be JSON (repeatable).",
)
@click.option("--remove-key", multiple=True, metavar="KEY", help="Remove a metadata key.")
@click.option(
    "--ttl",
    metavar="DURATION",
    help="Delete it this long after its creation (e.g. 30d; 'none' clears it).",
)
@json_option
@pass_context
def edit(
    obj: Context,
    ref: str,
    description: str | None,
    metadata: tuple[str, ...],
    remove_key: tuple[str, ...],
    ttl: str | None,
    as_json: bool,
) -> None:
    """Edit a committed version; its files and digest never change.

    Every change is saved in one transaction and recorded in the audit trail.

    \b
    Examples:
      forebear edit iris-rf:v3 --description "retrained on April data"
      forebear edit iris-rf:v3 -m owner=ml-team -m accuracy=0.97
      forebear edit ckpt:v12 --ttl 30d
    """
    from ..units import parse_duration

    version = obj.store().artifact(ref)
    if description is not None:
        version.description = description or None
    for key, value in _metadata(metadata).items():
        version.metadata[key] = value
    for key in remove_key:
        if key not in version.metadata:
            fail(f"{version.ref} has no metadata key {key!r}")
        del version.metadata[key]
    if ttl is not None:
        version.ttl = None if ttl.lower() == "none" else parse_duration(ttl)
    version.save()
    if as_json:
        emit_json(version.to_dict())
        return
    echo(f"edited {version.project}/{version.ref}")


@command(short_help="Add or remove tags of a version.")
@click.argument("ref")
@click.argument("tags", nargs=-1, required=True, metavar="TAG...")
@click.option("--remove", is_flag=True, help="Remove the tags instead of adding them.")
@json_option
@pass_context
def tag(obj: Context, ref: str, tags: tuple[str, ...], remove: bool, as_json: bool) -> None:
    """Tag a version (tags follow the alias rules; many versions can share one).

    \b
    Examples:
      forebear tag iris-rf:v3 baseline cv
      forebear tag iris-rf:v3 cv --remove
      forebear ls --tag baseline
    """
    version = obj.store().artifact(ref)
    if remove:
        missing = [t for t in tags if t not in version.tags]
        if missing:
            fail(f"{version.ref} has no tag {missing[0]!r} (its tags: {version.tags or 'none'})")
        version.tags = [t for t in version.tags if t not in tags]
    else:
        version.tags = version.tags + [t for t in dict.fromkeys(tags) if t not in version.tags]
    version.save()
    if as_json:
        emit_json({"ref": version.ref, "tags": version.tags})
        return
    echo(f"{version.ref} tags: {', '.join(version.tags) or '-'}")


@command(short_help="Delete a version (restorable until gc purges it).")
@click.argument("ref")
@click.option(
    "--delete-aliases", is_flag=True, help="Remove its user aliases first (else refused)."
)
@json_option
@pass_context
def delete(obj: Context, ref: str, delete_aliases: bool, as_json: bool) -> None:
    """Soft-delete a version: hidden from refs and listings, kept in lineage.

    'latest' moves back to the newest live version. 'forebear restore' undoes it until
    gc purges it (after the grace period, 7 days by default).

    \b
    Examples:
      forebear delete ckpt:v3
      forebear delete iris-rf:v2 --delete-aliases
    """
    version = obj.store().artifact(ref)
    version.delete(delete_aliases=delete_aliases)
    if as_json:
        emit_json(version.to_dict())
        return
    echo(
        f"deleted {version.project}/{version.ref}; 'forebear restore "
        f"{version.project}/{version.ref}' undoes it until gc purges it"
    )


@command(short_help="Undo the deletion of a version.")
@click.argument("ref")
@json_option
@pass_context
def restore(obj: Context, ref: str, as_json: bool) -> None:
    """Restore a deleted version (NAME:vN), until gc purges it.

    \b
    Examples:
      forebear restore ckpt:v3
    """
    version = obj.store(create=False).restore(ref)
    if as_json:
        emit_json(version.to_dict())
        return
    echo(f"restored {version.project}/{version.ref} ({', '.join(version.aliases) or 'no aliases'})")


@command("delete-run", short_help="Delete a run (and, if asked, its outputs).")
@click.argument("run_id")
@click.option("--delete-outputs", is_flag=True, help="Delete the versions it logged too.")
@json_option
@pass_context
def delete_run(obj: Context, run_id: str, delete_outputs: bool, as_json: bool) -> None:
    """Mark a run deleted: hidden from 'forebear runs', kept in lineage.

    \b
    Examples:
      forebear delete-run 3cf5oxnw
      forebear delete-run 3cf5oxnw --delete-outputs
    """
    deleted = obj.store().delete_run(run_id, delete_outputs=delete_outputs)
    if as_json:
        emit_json({"run": run_id, "deleted_outputs": deleted})
        return
    outputs = f" and {len(deleted)} outputs: {', '.join(deleted)}" if deleted else ""
    echo(f"deleted run {run_id}{outputs}")


@command(short_help="Set how many versions of an artifact prune keeps.")
@click.argument("name", required=False)
@click.option("--keep-last", type=int, metavar="N", help="Keep the newest N versions.")
@click.option("--max-age", metavar="DURATION", help="Delete versions older than this (e.g. 30d).")
@click.option(
    "--keep-aliased/--no-keep-aliased",
    default=True,
    show_default=True,
    help="Keep every version a user alias points at.",
)
@click.option("--clear", is_flag=True, help="Remove the artifact's policy.")
@click.option("--project", "-p", help="Project of the artifact.")
@json_option
@pass_context
def retention(
    obj: Context,
    name: str | None,
    keep_last: int | None,
    max_age: str | None,
    keep_aliased: bool,
    clear: bool,
    project: str | None,
    as_json: bool,
) -> None:
    """Set an artifact's retention policy, applied by 'forebear prune'.

    The newest version always stays. Without NAME, list every policy.

    \b
    Examples:
      forebear retention ckpt --keep-last 3
      forebear retention ckpt --keep-last 3 --max-age 30d
      forebear retention ckpt --clear
      forebear retention
    """
    from ..units import parse_duration

    store = obj.store(create=name is not None)
    if name is None:
        policies = store.retention()
        if as_json:
            emit_json([_policy_dict(p) for p in policies])
            return
        if not policies:
            echo("no retention policies: set one with 'forebear retention NAME --keep-last N'")
            return
        table(
            ["project", "name", "keep last", "max age", "keep aliased"],
            [
                (
                    p.project,
                    p.name,
                    p.keep_last or "-",
                    _age(p.max_age),
                    "yes" if p.keep_aliased else "no",
                )
                for p in policies
            ],
        )
        return
    if not clear and keep_last is None and max_age is None:
        fail("give --keep-last N and/or --max-age DURATION (or --clear to remove the policy)")
    age = parse_duration(max_age) if max_age is not None else None
    policy = store.set_retention(
        name, keep_last=keep_last, max_age=age, keep_aliased=keep_aliased, project=project
    )
    if as_json:
        emit_json(None if policy is None else _policy_dict(policy))
        return
    if policy is None:
        echo(f"removed the retention policy of {name}")
    else:
        echo(
            f"{policy.project}/{policy.name}: keep the last {policy.keep_last or 'all'}, "
            f"max age {_age(policy.max_age)}, aliased versions "
            f"{'kept' if policy.keep_aliased else 'not kept'}; 'forebear prune --dry-run' "
            "shows what it would delete"
        )


def _age(age: dt.timedelta | None) -> str:
    from ..units import describe_duration

    return "-" if age is None else describe_duration(age)


def _policy_dict(policy: object) -> dict[str, object]:
    from ..records import RetentionPolicy

    assert isinstance(policy, RetentionPolicy)
    return {
        "project": policy.project,
        "name": policy.name,
        "keep_last": policy.keep_last,
        "max_age_seconds": None if policy.max_age is None else policy.max_age.total_seconds(),
        "keep_aliased": policy.keep_aliased,
    }


@command(short_help="Delete versions whose TTL or retention has run out.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@json_option
@pass_context
def prune(obj: Context, dry_run: bool, as_json: bool) -> None:
    """Delete the versions TTL and retention policies expire.

    Versions with user aliases never expire by TTL. Deleted versions can be restored
    until gc purges them.

    \b
    Examples:
      forebear prune --dry-run
      forebear prune && forebear gc
    """
    report = obj.store(create=False).prune(dry_run=dry_run)
    if as_json:
        emit_json(report.to_dict())
        return
    for ref in report.versions:
        echo(f"{ref}  ({report.rules[ref]})")
    echo(report.describe())


@command(short_help="Which versions hold a file's bytes.")
@click.argument("path_or_digest", metavar="PATH|DIGEST")
@json_option
@pass_context
def which(obj: Context, path_or_digest: str, as_json: bool) -> None:
    """List every version (and entry path) holding the bytes of a file or digest.

    \b
    Examples:
      forebear which data/train.csv
      forebear which 4b2212e31ac97fd4575a0b1c44d8843f --json
    """
    found = obj.store(create=False).which(path_or_digest)
    if as_json:
        emit_json(
            [{"ref": f"{v.project}/{v.ref}", "path": p, "deleted": v.deleted} for v, p in found]
        )
        return
    if not found:
        echo("no version holds these bytes")
        return
    table(
        ["version", "path", "state"],
        [(f"{v.project}/{v.ref}", p, "deleted" if v.deleted else "live") for v, p in found],
    )


@command(short_help="Remove a file's bytes from the store now (they stay listed).")
@click.argument("path_or_digest", metavar="PATH|DIGEST")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@json_option
@pass_context
def purge(obj: Context, path_or_digest: str, reason: str, as_json: bool) -> None:
    """Remove these bytes from the object location and every local cache at once.

    Versions that held them stay, listed as redacted; reading the purged entry fails
    naming the purge, everything else stays readable. This cannot be undone.

    \b
    Examples:
      forebear purge data/customers.csv --reason "GDPR request 42"
      forebear purge 4b2212e31ac97fd4575a0b1c44d8843f --reason "leaked key"
    """
    report = obj.store(create=False).purge(path_or_digest, reason=reason)
    if as_json:
        emit_json(report.to_dict())
        return
    for ref, path in report.entries:
        echo(f"redacted {ref} {path}")
    echo(report.describe())


@command(short_help="Show who changed what, and when.")
@click.argument("ref", required=False)
@click.option(
    "--since", metavar="WHEN", help="Only events since: a duration ago (7d) or an ISO date."
)
@json_option
@pass_context
def audit(obj: Context, ref: str | None, since: str | None, as_json: bool) -> None:
    """Show the audit trail, oldest first: of a version (NAME:v1), an artifact (NAME), or
    the whole store.

    \b
    Examples:
      forebear audit
      forebear audit iris-rf:v3
      forebear audit iris-rf --since 7d --json
    """
    events = obj.store(create=False).audit(ref, since=parse_moment(since))
    if as_json:
        emit_json(
            [
                {
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "details": e.details,
                }
                for e in events
            ]
        )
        return
    if not events:
        echo("no events")
        return
    table(
        ["at", "actor", "action", "target", "details"],
        [
            (
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                e.actor,
                e.action,
                e.target,
                json.dumps(e.details, sort_keys=True) if e.details else "",
            )
            for e in events
        ],
    )
