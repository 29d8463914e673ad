"""Where a store lives when the caller does not say: arguments, then ``FOREBEAR_DB`` /
``FOREBEAR_OBJECTS``, then ``FOREBEAR_DIR``, then ``./.forebear/``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .cache import DEFAULT_MAX_BYTES, parse_size

DEFAULT_DIR = ".forebear"
DB_FILE = "meta.db"


@dataclass(frozen=True)
class StoreSettings:
    db_url: str
    objects_url: str
    cache_dir: Path
    cache_max_bytes: int


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


def resolve(
    db_url: str | None = None,
    objects_url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> StoreSettings:
    directory = os.environ.get("FOREBEAR_DIR") or DEFAULT_DIR
    objects = objects_url or os.environ.get("FOREBEAR_OBJECTS")
    if objects is None:
        objects = str(Path(directory).resolve())
    local = local_path_of(objects)
    if local is not None:
        objects = str(local.resolve())
    db = db_url or os.environ.get("FOREBEAR_DB")
    if db is None:
        if local is None:
            db = sqlite_url(Path(directory) / DB_FILE)
        else:
            db = sqlite_url(Path(objects) / DB_FILE)
    cache = cache_dir or os.environ.get("FOREBEAR_CACHE_DIR")
    if cache is None:
        cache = Path(objects) / "cache" if local is not None else user_cache_dir()
    size = os.environ.get("FOREBEAR_CACHE_SIZE")
    max_bytes = parse_size(size) if size else DEFAULT_MAX_BYTES
    return StoreSettings(db, objects, Path(cache).resolve(), max_bytes)


def settings_for_path(path: str | os.PathLike[str]) -> StoreSettings:
    """Settings for ``forebear.open(path)``: a store folder, or a database URL."""
    text = os.fspath(path)
    if text.startswith(("sqlite:", "postgresql:", "postgresql+", "mysql")):
        return resolve(db_url=text)
    local = local_path_of(text)
    return resolve(objects_url=text, db_url=None if local is None else sqlite_url(local / DB_FILE))
