"""Sharing a store through a forebear server: ``server``, ``login``, and the admin's
``user``, ``grant``, ``revoke`` and ``token`` commands."""

from __future__ import annotations

import click

from .app import Context, cli, command, json_option, pass_context, store_options
from .output import echo, emit_json

ROLE = click.Choice(["reader", "writer", "maintainer"])


@command(short_help="Share the store with a team over HTTP, with users and roles.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
    help="Port to listen on.",
)  # fmt: skip
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64),
    help="Worker processes (each serves requests on its own).",
)  # fmt: skip
@click.option(
    "--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
    help="A host name the server answers to (repeatable; default: any, for a server "
    "behind a reverse proxy).",
)  # fmt: skip
@click.option(
    "--body-timeout", default=60.0, show_default=True, type=click.FloatRange(1, 86400),
    metavar="SECONDS",
    help="Give up on a request whose body stops arriving for this long (answered 408).",
)  # fmt: skip
@pass_context
def server(
    obj: Context,
    host: str,
    port: int,
    workers: int,
    allowed_hosts: tuple[str, ...],
    body_timeout: float,
) -> None:
    """Serve the store (--db/--objects) to clients that hold tokens instead of database and
    S3 credentials: the Python API and every command work through it (FOREBEAR_URL), and
    the web UI is served behind a login. Create the first admin with 'forebear user add
    NAME --admin' against the same --db/--objects.

    \b
    Examples:
      forebear server --db postgresql+psycopg://db/forebear --objects s3://bucket/fb
      forebear server --host 0.0.0.0 --port 8765 --workers 4
    """
    from ..server.main import serve
    from ..web.app import check_address

    check_address(host, port)
    echo(f"forebear server on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    serve(
        obj.db, obj.objects, host=host, port=port, workers=workers,
        allowed_hosts=allowed_hosts, body_timeout=body_timeout,
    )  # fmt: skip


@cli.command(short_help="Keep a server's token for later commands and scripts.")
@click.argument("url")
@click.option(
    "--token", metavar="TOKEN",
    help="The token (default: $FOREBEAR_TOKEN, else asked for without echo).",
)  # fmt: skip
def login(url: str, token: str | None) -> None:
    """Check a token against the server at URL and keep it in a file only you can read;
    then 'FOREBEAR_URL=URL' (or forebear.open(URL)) needs no FOREBEAR_TOKEN.

    \b
    Examples:
      forebear login https://forebear.example
      forebear login http://127.0.0.1:8765 --token fbt_...
    """
    from .. import settings as config
    from ..errors import InvalidInput
    from ..remote import RemoteBackend

    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"{url!r} is not a server URL; give one like https://forebear.example")
    token = token or config.env_token() or click.prompt("token", hide_input=True)
    backend = RemoteBackend(url, token.strip())  # refuses a token the server does not take
    user = backend.actor
    backend.close()
    path = config.save_token(url, token.strip())
    echo(f"logged in to {url} as {user} (token kept in {path})")


@cli.group("user", short_help="Add, list and disable the users of a server.")
def user_group() -> None:
    """Manage who may use the store through a server (a server admin's job; run against
    the server's --db/--objects, or through a server with an admin's token).

    \b
    Examples:
      forebear user add alice
      forebear user ls --json
    """


@user_group.command("add", short_help="Add a user.")
@click.argument("name")
@click.option("--admin", is_flag=True, help="A server admin: manages users, tokens and grants.")
@store_options
@pass_context
def user_add(obj: Context, name: str, admin: bool) -> None:
    """Add a user (no roles, no tokens yet: see 'grant' and 'token create').

    \b
    Examples:
      forebear user add alice
      forebear user add root --admin
    """
    obj.store(create=True).add_user(name, admin=admin)
    echo(f"added user {name}{' (admin)' if admin else ''}")


@user_group.command("ls", short_help="List users and their roles.")
@json_option
@store_options
@pass_context
def user_ls(obj: Context, as_json: bool) -> None:
    """List every user, whether admin or disabled, and their roles by project.

    \b
    Examples:
      forebear user ls
      forebear user ls --json
    """
    found = obj.store().users()
    if as_json:
        emit_json([u._asdict() for u in found])
        return
    for user in found:
        flags = " admin" if user.admin else ""
        flags += " disabled" if user.disabled_at else ""
        roles = ", ".join(f"{p}:{r}" for p, r in user.grants.items()) or "no roles"
        echo(f"{user.name}{flags}  {roles}")


@user_group.command("disable", short_help="Stop every token of a user.")
@click.argument("name")
@store_options
@pass_context
def user_disable(obj: Context, name: str) -> None:
    """Disable a user: every token of theirs stops working at once; what they did stays.

    \b
    Examples:
      forebear user disable bob
    """
    changed = obj.store(create=True).disable_user(name)
    echo(f"disabled {name}" if changed else f"{name} was disabled already")


@command(short_help="Give a user a role in a project.")
@click.argument("user")
@click.argument("project")
@click.argument("role", type=ROLE)
@pass_context
def grant(obj: Context, user: str, project: str, role: str) -> None:
    """Give USER the ROLE in PROJECT (which need not exist yet): reader (read, download),
    writer (+ log, use, edit, unprotected aliases), maintainer (+ protected aliases,
    delete, retention, purge). It replaces their role there.

    \b
    Examples:
      forebear grant alice iris writer
      forebear grant bob registry maintainer
    """
    obj.store(create=True).grant(user, project, role)
    echo(f"{user} is {role} in {project}")


@command(short_help="Take a user's role in a project away.")
@click.argument("user")
@click.argument("project")
@pass_context
def revoke(obj: Context, user: str, project: str) -> None:
    """Take USER's role in PROJECT away (their requests there are refused at once).

    \b
    Examples:
      forebear revoke alice iris
    """
    changed = obj.store(create=True).revoke(user, project)
    echo(f"{user} has no role in {project}" + ("" if changed else " (had none)"))


@cli.group("token", short_help="Create, list and revoke API tokens.")
def token_group() -> None:
    """API tokens: what a client shows a server instead of database and S3 credentials.

    \b
    Examples:
      forebear token create alice --name laptop
      forebear token revoke alice laptop
    """


@token_group.command("create", short_help="Create a token (printed once).")
@click.argument("user")
@click.option("--name", "name", required=True, metavar="NAME", help="What the token is for.")
@click.option(
    "--expires", metavar="DURATION", help="Stop working after this long (30d, 12h; default: never)."
)
@store_options
@pass_context
def token_create(obj: Context, user: str, name: str, expires: str | None) -> None:
    """Create a token for USER and print it: this is the only time it is shown (only its
    hash is kept).

    \b
    Examples:
      forebear token create alice --name laptop
      forebear token create ci --name github --expires 90d
    """
    from ..units import parse_duration

    lifetime = parse_duration(expires) if expires else None
    echo(obj.store(create=True).create_token(user, name, expires_in=lifetime))


@token_group.command("ls", short_help="List a user's tokens.")
@click.argument("user")
@json_option
@store_options
@pass_context
def token_ls(obj: Context, user: str, as_json: bool) -> None:
    """List USER's tokens: names, when made, when they expire, whether revoked (never
    the tokens themselves).

    \b
    Examples:
      forebear token ls alice --json
    """
    found = obj.store().tokens(user)
    if as_json:
        emit_json([{**t._asdict(), "active": t.active} for t in found])
        return
    for token in found:
        state = "active" if token.active else "revoked" if token.revoked_at else "expired"
        expires = f", expires {token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else ""
        echo(f"{token.name}  {state}  created {token.created_at:%Y-%m-%d %H:%M}{expires}")


@token_group.command("revoke", short_help="Stop a token now.")
@click.argument("user")
@click.argument("name")
@store_options
@pass_context
def token_revoke(obj: Context, user: str, name: str) -> None:
    """Revoke USER's token NAME: it stops working at once; their other tokens keep
    working.

    \b
    Examples:
      forebear token revoke alice laptop
    """
    changed = obj.store(create=True).revoke_token(user, name)
    echo(f"revoked {user}'s token {name}" if changed else f"{user} has no live token {name}")
