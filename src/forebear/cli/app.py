"""The `forebear` command group, the store every command works on, and the one place user
mistakes become one line on stderr.

Commands are thin: they call the public Python API and print. Heavy imports happen
inside commands, so `forebear --help` stays fast.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ..errors import ForebearError
from .output import echo

if TYPE_CHECKING:
    from ..store import Store

F = TypeVar("F", bound=Callable[..., Any])

REFS = """\b
Refs name one version:
  NAME                 its latest version (e.g. iris-rf)
  NAME:v3              version 3
  NAME:ALIAS           the version an alias points at (iris-rf:best, ds:production)
  PROJECT/NAME:REF     in another project (iris/iris-rf:v0); without PROJECT/, the
                       active run's project, else the only project with that name
"""

STORE_HELP = """\b
The store: --db/--objects (or FOREBEAR_DB/FOREBEAR_OBJECTS, or FOREBEAR_DIR), else the
first .forebear/ folder or forebear.toml in this folder or a parent (like git), else a new
./.forebear/ made by the first command that writes ('forebear status' says which).
"""


class Context:
    """What every command shares: the store options, and the store once opened."""

    def __init__(self, db: str | None, objects: str | None) -> None:
        self.db = db
        self.objects = objects
        self._store: Store | None = None

    def store(self, *, create: bool = False, new_format: int | None = None) -> Store:
        """The store; only commands that write may create it (``create``, in format
        ``new_format`` if given): a read-only command where there is no store says so and
        makes nothing."""
        if self._store is None:
            from ..store import Store

            self._store = Store(self.db, self.objects, create=create, format=new_format)
        return self._store


pass_context = click.make_pass_decorator(Context)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def store_options(command: F) -> F:
    """``--db``/``--objects`` after the command too (``forebear ls --db URL``): the same as
    the global options, hidden from each command's help."""

    def remember(name: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
        def callback(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
            if value is not None:
                from ..context import never_record, url_password

                never_record(url_password(value))
                setattr(ctx.ensure_object(Context), name, value)

        return callback

    command = click.option(
        "--objects", hidden=True, expose_value=False, callback=remember("objects")
    )(command)
    return click.option("--db", hidden=True, expose_value=False, callback=remember("db"))(command)


# `forebear --help` lists commands in the order they are learnt, not alphabetically.
ORDER = (
    "init", "log", "ls", "show", "versions", "get", "alias", "tag", "edit", "diff",
    "lineage", "runs", "run", "status", "link", "protect", "history", "webhook", "delete",
    "restore", "retention", "prune", "gc", "which", "purge", "audit", "delete-run", "verify",
    "repair", "upgrade", "rebuild-index", "push", "pull", "cache", "ui", "server", "login",
    "user", "grant", "revoke", "token",
)  # fmt: skip


class Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        known = [name for name in ORDER if name in self.commands]
        return known + sorted(set(self.commands) - set(known))


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=REFS + "\n" + STORE_HELP,
)
@click.option(
    "--db",
    metavar="URL",
    help="Catalog database, e.g. sqlite:///path/meta.db or postgresql+psycopg://host/db "
    "[default: $FOREBEAR_DB, else the store found from here].",
)
@click.option(
    "--objects",
    metavar="URL",
    help="Object location: a folder, or an fsspec URL such as s3://bucket/prefix "
    "[default: $FOREBEAR_OBJECTS, else the store found from here].",
)
@click.version_option(package_name="forebear")
@click.pass_context
def cli(ctx: click.Context, db: str | None, objects: str | None) -> None:
    """Version datasets and models, and remember where each came from.

    \b
    Examples:
      forebear log data/ --name iris-raw      log a folder as a new version
      forebear ls                             every artifact and its latest version
      forebear show iris-raw                  one version: files, producers, consumers
      forebear lineage iris-rf --up           which data produced this model
    """
    from ..context import never_record, url_password

    for url in (db, objects):  # whatever they hold, a run's context never records them
        never_record(url_password(url))
    ctx.obj = Context(db, objects)


def command(name: str | None = None, **options: Any) -> Callable[[F], click.Command]:
    """A subcommand that also takes the store options after its name."""

    def decorate(function: F) -> click.Command:
        return cli.command(name, **options)(store_options(function))

    return decorate


def fail(message: str, code: int = 1) -> NoReturn:
    one_line = " ".join(message.split())  # backends' messages may span several lines
    echo(f"forebear: error: {one_line}", err=True)
    raise SystemExit(code)


# Whether the process ends with the command: `main` run as the program (not called with
# arguments by a program that goes on afterwards); whether the command asked to end it
# quickly; whether it succeeded.
_program = False
_end_quickly = False
_succeeded = False


def end_quickly() -> None:
    """Once this command succeeds, end the process without taking the interpreter apart, if
    the process ends with the command; and keep Python's cyclic garbage collector off until
    then. A log holds the collector off while it works (`collector_paused`): turned on
    again, its first run looked at every object the log made and still held (40-60 ms of a
    log of 50,000 files here), and taking the interpreter apart freed them one by one
    (about 90 ms more). Every exit handler still runs first (a run is finished, webhooks
    sent), and the output is flushed: nothing else is left to do then."""
    global _end_quickly
    if _program:
        gc.disable()
        _end_quickly = True


def _exit_at_once() -> None:
    """The last exit handler (registered before any other): end a command that asked to."""
    if _end_quickly and _succeeded:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # closed, or a closed pipe
                stream.flush()
        os._exit(0)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one line on stderr for every user mistake, never a traceback."""
    global _program, _succeeded
    _program = argv is None
    if _program:
        atexit.register(_exit_at_once)  # first: exit handlers run last one first
    args = list(argv) if argv is not None else sys.argv[1:]
    if not args:
        args = ["--help"]
    try:
        code = cli.main(args=args, prog_name="forebear", standalone_mode=False)
    except ForebearError as exc:
        fail(str(exc))
    except click.UsageError as exc:
        # the whole command's help: 'forebear token create --help', not 'forebear create'
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        fail(f"{exc.format_message()}{hint}", exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        fail("aborted", 130)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        _quiet_broken_pipe()
    if isinstance(code, int) and code:
        raise SystemExit(code)
    _succeeded = True


def _quiet_broken_pipe() -> NoReturn:
    """The reader of our output went away (``forebear ls | head``): stop quietly, without
    Python's complaint when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(1)


def parse_moment(text: str | None) -> dt.datetime | None:
    """A moment from the command line: an ISO date or time (UTC unless it says), or a
    duration ago (``7d``, ``12h``)."""
    if text is None:
        return None
    from ..units import parse_duration

    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return dt.datetime.now(dt.timezone.utc) - parse_duration(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)
