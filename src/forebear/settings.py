"""Where a store lives when the caller does not say: arguments, then the environment
(``FOREBEAR_DB`` / ``FOREBEAR_OBJECTS``, or ``FOREBEAR_DIR``), then — like git — the first
``.forebear/`` folder or ``forebear.toml`` found in the current folder or one of its
parents, and only when there is none, ``./.forebear/`` (created by the first write).

Every ``FOREBEAR_*`` setting is read here. Credentials never live here: they come from each
backend's own environment and files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput, StoreError
from .units import parse_size
from .urls import url_password

# The local cache of remote objects holds at most this much unless told otherwise.
DEFAULT_CACHE_BYTES = 10 * 1000**3
DEFAULT_DIR = ".forebear"
DB_FILE = "meta.db"
CONFIG_FILE = "forebear.toml"


# How long a writer's hold on the objects it stores lasts unless renewed (it is renewed
# four times per period while the writer works).
DEFAULT_LEASE_SECONDS = 600.0
DEFAULT_DISTRIBUTED_HOLD_SECONDS = 7 * 24 * 3600.0
# How often a running run tells the catalog it is alive; one silent for three periods has
# crashed.
DEFAULT_HEARTBEAT_SECONDS = 60.0


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidInput(f"{variable}={text!r} is not a number of seconds above 0")
    return value


def lease_duration() -> dt.timedelta:
    """A writer's lease (``FOREBEAR_LEASE_SECONDS``, default 10 minutes)."""
    return dt.timedelta(seconds=_seconds("FOREBEAR_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def distributed_hold() -> dt.timedelta:
    """How long a distributed version's parts are kept with nothing added to it
    (``FOREBEAR_DISTRIBUTED_HOLD_SECONDS``, default 7 days): then gc may remove them."""
    return dt.timedelta(
        seconds=_seconds("FOREBEAR_DISTRIBUTED_HOLD_SECONDS", DEFAULT_DISTRIBUTED_HOLD_SECONDS)
    )


def default_project() -> str:
    """The project runs log into when none is given (``FOREBEAR_PROJECT``, else
    ``default``)."""
    return os.environ.get("FOREBEAR_PROJECT") or "default"


MODE_VARIABLE = "FOREBEAR_MODE"
RUN_ID_VARIABLE = "FOREBEAR_RUN_ID"
RESUME_VARIABLE = "FOREBEAR_RESUME"


def run_id_and_resume() -> tuple[str | None, str | None]:
    """The run id and ``resume`` of `forebear.init` when not given (``FOREBEAR_RUN_ID`` and
    ``FOREBEAR_RESUME``, as W&B's ``WANDB_RUN_ID`` and ``WANDB_RESUME``: a batch job that
    sets them resumes its run when it is started again); None where unset."""
    return os.environ.get(RUN_ID_VARIABLE) or None, os.environ.get(RESUME_VARIABLE) or None


def run_mode() -> str | None:
    """How `forebear.init` runs when its ``mode`` is not given (``FOREBEAR_MODE``, as W&B's
    ``WANDB_MODE``: ``disabled`` records nothing); None when unset."""
    return os.environ.get(MODE_VARIABLE) or None


def progress_off() -> bool:
    """Whether progress bars are turned off (any ``FOREBEAR_NO_PROGRESS`` value)."""
    return bool(os.environ.get("FOREBEAR_NO_PROGRESS"))


def heartbeat_interval() -> float:
    """Seconds between a run's heartbeats (``FOREBEAR_HEARTBEAT_SECONDS``, default 60)."""
    return _seconds("FOREBEAR_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS)


def host_name() -> str:
    """This machine's name, as runs, writers and the audit trail record it
    (``socket.gethostname()`` without importing `socket`, 6 ms of every command's start)."""
    import platform

    return platform.node()


def local_actor() -> str:
    """Who changes a store from this process, for its audit trail: ``user@host``."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{host_name()}"


@dataclass(frozen=True)
class StoreSettings:
    db_url: str
    objects_url: str
    cache_dir: Path
    cache_max_bytes: int
    # how the store was chosen, for `forebear status` and for "no store here" errors
    source: str = "given"
    # False only for the default ./.forebear/ chosen because no store was found
    found: bool = True


def _has_protocol(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def local_path_of(url: str) -> Path | None:
    """The local folder an objects URL names, or None for a remote location."""
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if _has_protocol(url):
        return None
    return Path(url)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "forebear"


def find_store(start: Path | None = None) -> Path | None:
    """The nearest ``.forebear/`` folder or ``forebear.toml`` in the current folder or one
    of its parents, or None.

    In one folder ``forebear.toml`` wins: it says where the store lives, and a
    ``.forebear/`` beside it is the part it leaves out (the objects of ``init --db URL``,
    the catalog of ``init --objects URL``) or a store it replaced."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for candidate in (folder / CONFIG_FILE, folder / DEFAULT_DIR):
            if candidate.is_dir() if candidate.name == DEFAULT_DIR else candidate.is_file():
                return candidate
    return None


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``forebear.toml`` in the current folder or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def read_config(path: Path) -> dict[str, str]:
    """The ``[store]`` table of a config file; relative local paths are taken relative to
    the file's folder."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise StoreError(f"cannot read {str(path)!r}: {exc}") from exc
    table = document.get("store", {})
    if not isinstance(table, dict):
        raise StoreError(f"{str(path)!r}: [store] must be a table")
    settings = {k: str(v) for k, v in table.items() if k in ("db", "objects", "cache_dir")}
    for key in ("objects", "cache_dir"):
        local = local_path_of(settings[key]) if key in settings else None
        if local is not None and not local.is_absolute():
            settings[key] = str((path.parent / local).resolve())
    return settings


def _has_credentials(url: str) -> bool:
    return url_password(url) is not None


def write_config(path: Path, db_url: str | None, objects_url: str | None) -> None:
    """Write ``forebear.toml`` so every script and command in this folder (and below) uses
    the team's store without code changes. Refuses URLs that carry credentials."""
    refuse_credentials(db_url, objects_url)
    lines = [
        "# Where this project's forebear store lives (written by `forebear init`).",
        "# No credentials here: they come from the environment (PGPASSWORD, ~/.pgpass, AWS_*).",
        "[store]",
    ]
    if db_url:
        lines.append(f"db = {json.dumps(db_url)}")
    if objects_url:
        lines.append(f"objects = {json.dumps(objects_url)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def refuse_credentials(*urls: str | None) -> None:
    """`InvalidInput` for a URL meant for ``forebear.toml`` that carries a password."""
    for url in urls:
        if url and _has_credentials(url):
            raise InvalidInput(
                "refusing to write a password into forebear.toml; leave it out of the URL and "
                "let the backend find it (PGPASSWORD or ~/.pgpass for PostgreSQL, AWS_* "
                "variables or profiles for S3)"
            )


def server_url(db_url: str | None = None, objects_url: str | None = None) -> str | None:
    """The forebear server a store is reached through: a ``http(s)://`` URL given as the
    store, else ``FOREBEAR_URL`` when no other store is given; None for a direct store."""
    if db_url and db_url.startswith(("http://", "https://")):
        return db_url
    if db_url or objects_url:
        return None
    return os.environ.get("FOREBEAR_URL") or None


def server_hosts() -> list[str]:
    """The host names a server answers to (``FOREBEAR_SERVER_HOSTS``, comma-separated;
    ``*`` or unset: any, for a server behind a reverse proxy that checks them)."""
    text = os.environ.get("FOREBEAR_SERVER_HOSTS") or "*"
    return [name.strip().lower() for name in text.split(",") if name.strip()]


def server_body_timeout(default: float) -> float:
    """How long a server waits for more of a request's body before it gives the request
    up (``FOREBEAR_SERVER_BODY_TIMEOUT``, seconds; unset: ``default``)."""
    text = os.environ.get("FOREBEAR_SERVER_BODY_TIMEOUT")
    return float(text) if text else default


def export_server_settings(
    db_url: str, objects_url: str, hosts: Sequence[str], body_timeout: float
) -> None:
    """Hand a server's store, host names and body timeout to its worker processes,
    through the environment they inherit (read back by `resolve`, `server_hosts` and
    `server_body_timeout`)."""
    os.environ["FOREBEAR_DB"] = db_url
    os.environ["FOREBEAR_OBJECTS"] = objects_url
    os.environ["FOREBEAR_SERVER_HOSTS"] = ",".join(hosts) or "*"
    os.environ["FOREBEAR_SERVER_BODY_TIMEOUT"] = repr(float(body_timeout))


def env_token() -> str | None:
    """``FOREBEAR_TOKEN``: the token a client shows its server."""
    return os.environ.get("FOREBEAR_TOKEN") or None


def login_file() -> Path:
    """Where ``forebear login`` keeps tokens by server URL (readable by its owner only)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "forebear" / "login.json"


def server_token(url: str) -> str | None:
    """The token for a server: ``FOREBEAR_TOKEN``, else the one ``forebear login`` saved."""
    found = env_token() or _saved_tokens().get(url.rstrip("/"))
    return found if isinstance(found, str) else None


def _saved_tokens() -> dict[str, object]:
    """The login file's tokens by server URL (none when it is missing or unreadable)."""
    try:
        saved = json.loads(login_file().read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return saved if isinstance(saved, dict) else {}


def save_token(url: str, token: str) -> Path:
    """Keep a server's token for later sessions, in a file only its owner can read."""
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    saved = _saved_tokens()
    saved[url.rstrip("/")] = token
    descriptor = os.open(f"{path}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(saved, out, indent=2)
    os.chmod(f"{path}.tmp", 0o600)
    os.replace(f"{path}.tmp", path)
    return path


def config_home(config_file: Path) -> Path:
    """Where the part of a store a ``forebear.toml`` leaves out lives: the ``.forebear/``
    beside it, wherever the command runs from."""
    return config_file.resolve().parent / DEFAULT_DIR


def resolve(
    db_url: str | None = None,
    objects_url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    home: Path | None = None,
) -> StoreSettings:
    """The store's settings from the arguments, the environment, the store found from
    here, then the defaults; ``home`` replaces ``./.forebear/`` as the default folder."""
    env_db, env_objects = os.environ.get("FOREBEAR_DB"), os.environ.get("FOREBEAR_OBJECTS")
    env_dir = os.environ.get("FOREBEAR_DIR")
    from_file: dict[str, str] = {}
    source = "given"
    found = True
    directory: Path | None = None
    if home is not None:  # a forebear.toml given by path: it alone says where
        env_db = env_objects = None
    elif db_url or objects_url:
        source = "--db/--objects"
    elif env_db or env_objects:
        source = "FOREBEAR_DB/FOREBEAR_OBJECTS"
    elif env_dir:
        directory = Path(env_dir)
        source = "FOREBEAR_DIR"
    else:
        nearest = find_store()
        if nearest is None:
            directory = Path(DEFAULT_DIR)
            source = f"none found from {os.getcwd()} up: a new store in ./{DEFAULT_DIR}/"
            found = False
        elif nearest.name == CONFIG_FILE:
            from_file = read_config(nearest)
            directory = config_home(nearest)
            source = f"{nearest}"
        else:
            directory = nearest
            source = f"{nearest}"
    if directory is None:
        directory = home or Path(DEFAULT_DIR)
    objects = objects_url or env_objects or from_file.get("objects")
    if objects is None:
        objects = str(directory.resolve())
    local = local_path_of(objects)
    if local is not None:
        objects = str(local.resolve())
    db = db_url or env_db or from_file.get("db")
    if db is None:
        if local is None:
            db = sqlite_url(directory / DB_FILE)
        else:
            db = sqlite_url(Path(objects) / DB_FILE)
    cache = cache_dir or os.environ.get("FOREBEAR_CACHE_DIR") or from_file.get("cache_dir")
    if cache is None:
        cache = Path(objects) / "cache" if local is not None else user_cache_dir()
    size = os.environ.get("FOREBEAR_CACHE_SIZE")
    max_bytes = parse_size(size) if size else DEFAULT_CACHE_BYTES
    return StoreSettings(db, objects, Path(cache).resolve(), max_bytes, source, found)


def settings_for_path(path: str | os.PathLike[str]) -> StoreSettings:
    """Settings for ``forebear.open(path)``: a store folder, a ``forebear.toml`` (or a
    folder holding one and no store), a folder holding a ``.forebear/`` store and none of
    its own (a project's folder, as ``git`` takes a work tree for its ``.git``), or a
    database URL."""
    text = os.fspath(path)
    if text.startswith(("sqlite:", "postgresql:", "postgresql+", "mysql")):
        return resolve(db_url=text)
    local = local_path_of(text)
    if local is not None:
        config_file = local if local.suffix == ".toml" else local / CONFIG_FILE
        if config_file.is_file() and not (local / "forebear.json").exists():
            found = read_config(config_file)
            return resolve(
                found.get("db"), found.get("objects"), found.get("cache_dir"),
                home=config_home(config_file),
            )  # fmt: skip
        if (local / DEFAULT_DIR).is_dir() and not _holds_store(local):
            local = local / DEFAULT_DIR
            text = str(local)
    return resolve(objects_url=text, db_url=None if local is None else sqlite_url(local / DB_FILE))


def _holds_store(folder: Path) -> bool:
    """Whether ``folder`` is a store's own folder (its format file or catalog is there)."""
    return (folder / "forebear.json").exists() or (folder / DB_FILE).exists()


def own_files(catalog: str | None, stat_cache: str | os.PathLike[str]) -> frozenset[str]:
    """A store's own files that a log refuses to take: a SQLite catalog (wherever it is)
    and the stat cache, with their journals."""
    files: set[str] = set()
    for base in (catalog, os.fspath(stat_cache)):
        if base is not None:
            files.update(os.path.abspath(f"{base}{suffix}") for suffix in ("", "-wal", "-shm"))
    return frozenset(files)
