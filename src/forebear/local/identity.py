"""Making sure a catalog and an object location belong to the same store.

Both record the store id: the catalog in its ``store_info`` table, the location in
``forebear.json``. A pair whose ids differ is refused before anything reads or writes
through it, so a mistyped ``--db`` (or a lost ``meta.db``) can never make gc judge every
object garbage, nor a log commit into a catalog whose objects live elsewhere.

A side without an id (a new store, or one written before stores had ids) is given the
other's only when the pair evidently belongs together: both are empty, or the location
holds the manifests of the catalog's newest versions.
"""

from __future__ import annotations

import os
import uuid

from ..db import identity
from ..db.engine import Engine, read_session, redact, write_session
from ..errors import StoreError, StoreNotFound
from ..objects import NEW_STORE_FORMAT, ObjectLocation


def bind(
    location: ObjectLocation,
    engine: Engine,
    *,
    writable: bool = True,
    create: bool = True,
    new_format: int | None = None,
) -> str | None:
    """The store id shared by the catalog and the location, recorded on a side that lacks
    it (unless not ``writable``); `StoreError` when they belong to different stores, and
    `StoreNotFound` when the location is not a store yet and ``create`` is not set. A
    location made a store here is made in format ``new_format`` (by default the newest);
    one in another format already is refused."""
    version = NEW_STORE_FORMAT if new_format is None else new_format
    try:
        bound = _bind(location, engine, writable, create, version)
    except _Unrelated:
        # another process may have just made this store: it writes the catalog's id, the
        # location's, then objects; read both again before refusing
        try:
            bound = _bind(location, engine, writable, create, version)
        except _Unrelated as again:
            raise again.error from None
    if new_format is not None and location.format_version != new_format:
        after = "; 'forebear upgrade' moves it to format 3" if new_format > 2 else ""
        raise StoreError(
            f"the store at {location.url!r} is in format {location.format_version} already: "
            f"a format is chosen only when a store is made{after}"
        )
    return bound


class _Unrelated(Exception):
    def __init__(self, error: StoreError) -> None:
        self.error = error


def _bind(
    location: ObjectLocation, engine: Engine, writable: bool, create: bool, new_format: int
) -> str | None:
    found = location.read_format()  # first: a concurrent creator writes it last
    location_id = found.store_id if found is not None else None
    with read_session(engine) as session:
        catalog_id = identity.store_id(session)
        newest = identity.newest_manifests(session)
    if location_id is not None and location_id == catalog_id:
        return location_id
    if location_id is not None and catalog_id is not None:
        raise _mismatch(location, engine, location_id, catalog_id)
    if newest:
        belongs = any(location.has(digest) for digest in newest)
    else:
        belongs = not location.holds_objects()
    if not belongs:
        raise _Unrelated(_unrelated(location, engine, bool(newest)))
    if found is None and not create:
        raise StoreNotFound(
            f"no forebear store at {location.url!r} (it has no forebear.json); check the "
            "path or URL, or make the store with 'forebear init'"
        )
    if not writable:
        return location_id or catalog_id
    chosen = location_id or catalog_id or uuid.uuid4().hex
    if catalog_id is None:
        # the catalog decides first: it is transactional, and an object store has no
        # create-if-absent, so racing creators all adopt the id the catalog kept
        with write_session(engine) as session:
            recorded = identity.record_store_id(session, chosen)
        if recorded != chosen:
            if location_id is not None:
                raise _mismatch(location, engine, location_id, recorded)
            chosen = recorded
    if found is None:
        made = location.ensure_format(chosen, new_format).store_id
        if made is not None and made != chosen:
            raise _mismatch(location, engine, made, chosen)
    elif location_id is None:
        location.record_store_id(chosen)
    return chosen


def refuse_new_catalog(location: ObjectLocation, db_url: str, catalog_file: str) -> None:
    """Before a new SQLite catalog file is created beside an object location that holds a
    store already: refuse (nothing is created), as `bind` would once it existed."""
    if not os.path.exists(catalog_file) and location.read_format() and location.holds_objects():
        raise _unrelated_to(location, redact(db_url), False)


def check(engine_id: str | None, expected: str | None, engine: Engine) -> None:
    """Refuse a catalog whose store id is not the one the store was opened with (it was
    replaced while in use)."""
    if expected is not None and engine_id != expected:
        raise StoreError(
            f"the catalog {redact(str(engine.url))} was replaced while in use (it now belongs "
            f"to store {engine_id or 'none'}, not {expected}); nothing was recorded: check "
            "the catalog and run the command again"
        )


def _mismatch(
    location: ObjectLocation, engine: Engine, location_id: str, catalog_id: str
) -> StoreError:
    return StoreError(
        f"the catalog {redact(str(engine.url))} belongs to store {catalog_id}, but the objects "
        f"at {location.url!r} belong to store {location_id}; they are not one store: point "
        "--db/--objects (or FOREBEAR_DB/FOREBEAR_OBJECTS) at the two halves of the same store"
    )


def _unrelated(location: ObjectLocation, engine: Engine, catalog_has_versions: bool) -> StoreError:
    return _unrelated_to(location, redact(str(engine.url)), catalog_has_versions)


def _unrelated_to(location: ObjectLocation, catalog: str, catalog_has_versions: bool) -> StoreError:
    if catalog_has_versions:
        why = f"the catalog {catalog} has versions whose objects are not at {location.url!r}"
    else:
        why = (
            f"the objects at {location.url!r} belong to a store whose catalog is not "
            f"{catalog} (that catalog is empty or new: a mistyped --db, or a lost meta.db?)"
        )
    return StoreError(
        f"{why}; refusing to use them together, so nothing can be lost: point --db/--objects "
        "(or FOREBEAR_DB/FOREBEAR_OBJECTS) at the two halves of the same store"
    )
