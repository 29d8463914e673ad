"""Registry commands: link, protect, history, and webhooks."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from .app import Context, cli, command, fail, json_option, pass_context, store_options
from .output import echo, emit_json, table

if TYPE_CHECKING:
    from ..records import Delivery, Webhook


@command(short_help="Link a version into a registry collection.")
@click.argument("ref")
@click.argument("collection")
@click.option(
    "--alias", "-a", "aliases", multiple=True, metavar="ALIAS",
    help="Point this alias of the collection at the link (repeatable).",
)  # fmt: skip
@click.option("--reason", metavar="TEXT", help="Why (kept in the alias history).")
@json_option
@pass_context
def link(
    obj: Context,
    ref: str,
    collection: str,
    aliases: tuple[str, ...],
    reason: str | None,
    as_json: bool,
) -> None:
    """Link the version REF into the registry collection COLLECTION (registry/NAME).

    The registry version has the same files and digest as REF; nothing is copied. Linking
    content that is linked there already gives the existing registry version.

    \b
    Examples:
      forebear link fraud/fraud-rf:v3 registry/fraud-detector --alias staging
      forebear link fraud-rf:best fraud-detector
    """
    version = obj.store().artifact(ref)
    linked = version.link(collection, aliases=list(aliases), reason=reason)
    if as_json:
        emit_json(linked.to_dict())
        return
    shown = f" [{', '.join(linked.aliases)}]" if linked.aliases else ""
    echo(f"{linked.qualified_ref} -> {version.qualified_ref}{shown}")


@command(short_help="Protect an alias: it then moves only with --force.")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--remove", is_flag=True, help="Unprotect it instead.")
@json_option
@pass_context
def protect(obj: Context, name: str, alias_name: str, remove: bool, as_json: bool) -> None:
    """Protect ALIAS of the artifact or collection NAME: moving or removing it then needs
    'forebear alias ... --force' (on a server, a maintainer's token).

    \b
    Examples:
      forebear protect registry/fraud-detector production
      forebear protect registry/fraud-detector production --remove
    """
    store = obj.store()
    if remove:
        changed = store.unprotect_alias(name, alias_name)
    else:
        changed = store.protect_alias(name, alias_name)
    protected = store.protected_aliases(name)
    if as_json:
        emit_json({"name": name, "alias": alias_name, "changed": changed, "protected": protected})
        return
    state = "unprotected" if remove else "protected"
    echo(f"{name}: {alias_name!r} {state}{'' if changed else ' already'}")


@command(short_help="Show every alias move of an artifact: when, who, why.")
@click.argument("name")
@click.option("--alias", "alias_name", metavar="ALIAS", help="Only the moves of this alias.")
@json_option
@pass_context
def history(obj: Context, name: str, alias_name: str | None, as_json: bool) -> None:
    """Show the alias history of the artifact or collection NAME, oldest first: which
    version each alias pointed at from when, who moved it, and why.

    \b
    Examples:
      forebear history registry/fraud-detector
      forebear history registry/fraud-detector --alias production --json
    """
    store = obj.store(create=False)
    moves = store.alias_history(name)
    if alias_name is not None:
        moves = [m for m in moves if m["alias"] == alias_name]
    else:
        moves = [m for m in moves if m["alias"] != "latest"]
    if as_json:
        emit_json({"name": name, "protected": store.protected_aliases(name), "moves": moves})
        return
    if not moves:
        echo("no alias moves")
        return
    table(
        ["moved at", "alias", "to", "from", "by", "reason"],
        [
            (
                m["moved_at"][:19].replace("T", " "),
                m["alias"],
                m["version"] or "(removed)",
                m["previous"] or "-",
                m["actor"] or "-",
                m["reason"] or "",
            )
            for m in moves
        ],
    )


@cli.group(short_help="Send signed events to other systems (CI, deployment).")
def webhook() -> None:
    """Webhooks: signed JSON POSTs for version.logged, version.linked, alias.moved,
    version.deleted and run.alert (a script's forebear.alert). Events are queued with the
    change itself and sent until the receiver answers 2xx.

    \b
    Examples:
      forebear webhook add https://ci.example/hook --event alias.moved --secret-stdin
      forebear webhook ls
      forebear webhook deliveries
      forebear webhook deliver
    """


@webhook.command("add", short_help="Add a receiver.")
@click.argument("url")
@click.option(
    "--event", "-e", "events", multiple=True, required=True, metavar="EVENT",
    help="An event to send: version.logged, version.linked, alias.moved, version.deleted, "
    "run.alert (repeatable).",
)  # fmt: skip
@click.option(
    "--secret",
    metavar="TEXT",
    help="The signing secret (other users may see it in ps; prefer --secret-stdin).",
)
@click.option("--secret-stdin", is_flag=True, help="Read the signing secret from standard input.")
@json_option
@store_options
@pass_context
def webhook_add(
    obj: Context,
    url: str,
    events: tuple[str, ...],
    secret: str | None,
    secret_stdin: bool,
    as_json: bool,
) -> None:
    """Send a signed POST to URL for each EVENT. The body is signed with HMAC-SHA256 of the
    secret (header X-Forebear-Signature: sha256=HEX); the secret is never shown again.

    \b
    Examples:
      printf %s "$SECRET" | forebear webhook add https://ci.example/hook \\
          -e alias.moved -e version.linked --secret-stdin
    """
    if secret_stdin:
        if secret is not None:
            fail("give the secret with --secret or --secret-stdin, not both")
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        fail("a webhook needs a signing secret: --secret-stdin (or --secret TEXT)")
    hook = obj.store().add_webhook(url, list(events), secret)
    if as_json:
        emit_json(_hook_dict(hook))
        return
    echo(f"webhook {hook.id}: {hook.url} ({', '.join(hook.events)})")


@webhook.command("ls", short_help="List the receivers.")
@json_option
@store_options
@pass_context
def webhook_ls(obj: Context, as_json: bool) -> None:
    """List the webhooks (never their secrets).

    \b
    Examples:
      forebear webhook ls --json
    """
    hooks = obj.store(create=False).webhooks()
    if as_json:
        emit_json([_hook_dict(h) for h in hooks])
        return
    if not hooks:
        echo("no webhooks")
        return
    table(
        ["id", "url", "events", "added by", "added at"],
        [
            (str(h.id), h.url, ", ".join(h.events), h.created_by, f"{h.created_at:%Y-%m-%d %H:%M}")
            for h in hooks
        ],
    )


@webhook.command("rm", short_help="Remove a receiver.")
@click.argument("webhook_id", metavar="ID", type=int)
@json_option
@store_options
@pass_context
def webhook_rm(obj: Context, webhook_id: int, as_json: bool) -> None:
    """Stop sending to webhook ID (its delivery log stays).

    \b
    Examples:
      forebear webhook rm 2
    """
    hook = obj.store().remove_webhook(webhook_id)
    if as_json:
        emit_json(_hook_dict(hook))
        return
    echo(f"removed webhook {hook.id} ({hook.url})")


@webhook.command("deliveries", short_help="Show the delivery log.")
@click.argument("webhook_id", metavar="[ID]", type=int, required=False)
@click.option("--limit", type=int, default=50, show_default=True, help="How many, newest first.")
@json_option
@store_options
@pass_context
def webhook_deliveries(obj: Context, webhook_id: int | None, limit: int, as_json: bool) -> None:
    """Show what was sent (of webhook ID, or all), newest first: status, attempts, the
    receiver's last answer.

    \b
    Examples:
      forebear webhook deliveries
      forebear webhook deliveries 1 --limit 10 --json
    """
    shown = obj.store(create=False).webhook_deliveries(webhook_id, limit)
    _print_deliveries(shown, as_json, empty="no deliveries")


@webhook.command("deliver", short_help="Send every pending delivery now.")
@json_option
@store_options
@pass_context
def webhook_deliver(obj: Context, as_json: bool) -> None:
    """Send every delivery not yet answered with 2xx now, whatever its backoff. Exits 1 if
    any still failed.

    \b
    Examples:
      forebear webhook deliver
    """
    attempted = obj.store().deliver_webhooks()
    _print_deliveries(attempted, as_json, empty="nothing to deliver")
    if any(d.delivered_at is None for d in attempted):
        raise SystemExit(1)


def _hook_dict(hook: Webhook) -> dict[str, object]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": hook.events,
        "created_at": hook.created_at.isoformat(),
        "created_by": hook.created_by,
    }


def _print_deliveries(shown: Sequence[Delivery], as_json: bool, *, empty: str) -> None:
    if as_json:
        emit_json(
            [
                {
                    "id": d.id,
                    "webhook": d.webhook_id,
                    "event": d.event,
                    "status": d.status,
                    "attempts": d.attempts,
                    "created_at": d.created_at.isoformat(),
                    "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                    "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
                    "last_status": d.last_status,
                    "last_error": d.last_error,
                    "body": d.body,
                }
                for d in shown
            ]
        )
        return
    if not shown:
        echo(empty)
        return
    table(
        ["id", "webhook", "event", "status", "attempts", "last answer"],
        [
            (
                str(d.id),
                str(d.webhook_id),
                d.event,
                d.status,
                str(d.attempts),
                d.last_error or (str(d.last_status) if d.last_status else "-"),
            )
            for d in shown
        ],
    )
