"""Bundles: many small objects sent to a forebear server as one upload.

A client of a server would otherwise send every small file or chunk on its own: on S3, a
PUT to a staging key, then the server's GET to hash it and its PUT under the digest, three
requests per object. A bundle is built like a pack (`PackWriter`: the objects' bytes end to
end, each checked against its digest as it is added) and sent whole, with its index (digest,
offset, length of each object). The server trusts neither: it reads the bundle once, checks
every object against its own digest, and only then stores each one the way its location
stores any new object (into its own packs in format 3, loose in format 2). A bundle is never
kept as it came; what the server writes is what it checked.

This module knows nothing of servers, users or versions: it encodes and checks an index, and
stores a checked bundle's objects into a location.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import IntegrityError, InvalidInput, StoreError
from ..hashing import hash_bytes
from .formatfile import DIGEST_RE
from .packs import byte_range

if TYPE_CHECKING:
    from .base import ObjectLocation
    from .packs import PackSlot

# Objects smaller than this travel in bundles: to a store with packs, where the server
# writes them into a pack anyway, up to 1 MiB (every chunk); to one without, where it
# writes each on its own, only the small ones whose requests cost more than their bytes.
BUNDLED_BELOW_PACKED = 1 << 20
BUNDLED_BELOW_LOOSE = 128 << 10
BUNDLE_TARGET = 8 << 20  # a bundle is sent once it holds this many bytes
MAX_BUNDLE_BYTES = 64 << 20  # what a server takes in one bundle (held in its memory)
MAX_BUNDLE_OBJECTS = 100_000

Slots = Mapping[str, tuple[int, int]]


def index_rows(slots: Slots) -> list[list[Any]]:
    """A bundle's index as sent: ``[[digest, offset, length], ...]`` in offset order."""
    return [[d, o, n] for d, (o, n) in sorted(slots.items(), key=lambda item: item[1])]


def encode_index(slots: Slots) -> bytes:
    """A bundle's index as one line of JSON (the body of ``POST /api/v1/bundles``)."""
    return json.dumps(index_rows(slots), separators=(",", ":")).encode()


def checked_index(value: Any, size: int) -> dict[str, tuple[int, int]]:
    """The slots a client's index names, each inside a bundle of ``size`` bytes;
    `InvalidInput` saying what is wrong otherwise (nothing is stored from such a bundle)."""
    if size > MAX_BUNDLE_BYTES:
        raise InvalidInput(
            f"a bundle of {size} bytes is larger than the {MAX_BUNDLE_BYTES} a server takes; "
            "send fewer objects in each"
        )
    if not isinstance(value, list) or len(value) > MAX_BUNDLE_OBJECTS:
        raise InvalidInput(
            f"a bundle's index is a list of at most {MAX_BUNDLE_OBJECTS} "
            "[digest, offset, length] rows"
        )
    slots: dict[str, tuple[int, int]] = {}
    end = 0  # where the previous row's bytes end: rows may not overlap, so that a bundle's
    # bytes are hashed once (overlapping rows made 64 MiB hash as terabytes)
    for row in value:
        if not (
            isinstance(row, list)
            and len(row) == 3
            and isinstance(row[0], str)
            and DIGEST_RE.fullmatch(row[0])
            and all(type(n) is int for n in row[1:])
        ):
            raise InvalidInput(
                f"malformed bundle index row {str(row)[:120]}: expected [digest, offset, length]"
            )
        digest, offset, length = row
        if offset < 0 or length < 0 or offset + length > size:
            raise InvalidInput(
                f"bundle index row for {digest} points outside the {size} bytes sent"
            )
        if offset < end or digest in slots:
            raise InvalidInput(
                f"bundle index row for {digest} overlaps or repeats an earlier one; rows "
                "name each object once, in the order of their bytes"
            )
        slots[digest] = (offset, length)
        end = offset + length
    return slots


def bundled_below(location: ObjectLocation) -> int:
    """Below what size a server over ``location`` takes objects in bundles."""
    return BUNDLED_BELOW_PACKED if location.packs is not None else BUNDLED_BELOW_LOOSE


def store_bundle(
    location: ObjectLocation,
    data: bytes,
    slots: Slots,
    workers: int,
    on_checked: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Check every object of a bundle against its digest, tell ``on_checked`` (a server's
    receipts, which hold the objects off gc from then on), then store the ones
    ``location`` lacks and make them durable; the digests stored or already there. The
    first mismatch raises `IntegrityError` before anything is stored."""
    view = memoryview(data)
    for digest, (offset, length) in slots.items():
        if hash_bytes(view[offset : offset + length]) != digest:
            raise IntegrityError(
                f"the bytes sent for object {digest} do not hash to it; nothing of this "
                "bundle was stored"
            )
    if on_checked is not None:  # before looking: what is there now stays there
        on_checked(sorted(slots))
    sizes = {digest: length for digest, (_, length) in slots.items()}
    there = location.present(sizes)
    missing = [(d, offset, length) for d, (offset, length) in slots.items() if d not in there]

    def put(place: tuple[str, int, int]) -> None:
        digest, offset, length = place  # known missing: no request to ask again
        location.put_stream(io.BytesIO(view[offset : offset + length]), digest, source="a bundle")

    if location.packs is not None:  # appended to one pack: in order, no thread needed
        for place in missing:
            put(place)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(put, missing):
                pass
    location.flush()
    return sorted(slots)


# Batch reads: a client of a server asks for many small objects in one request, not one
# request each (100,000 small files took 527 s to download through a server, 5 ms each).
READ_BATCH_OBJECTS = 2_000  # objects a client asks for in one batch read, at most
READ_BATCH_BYTES = 8 << 20  # what one answer carries, at most (held in the server's memory)


def checked_read_request(value: Any) -> list[str]:
    """The digests a batch read asks for (``{"digests": [...]}``); `InvalidInput` saying
    what is wrong otherwise."""
    digests = value.get("digests") if isinstance(value, dict) else None
    if not (
        isinstance(digests, list)
        and len(digests) <= READ_BATCH_OBJECTS
        and all(isinstance(d, str) and DIGEST_RE.fullmatch(d) for d in digests)
    ):
        raise InvalidInput(
            f"malformed batch read: {{'digests': [...]}}, at most {READ_BATCH_OBJECTS} digests"
        )
    return list(dict.fromkeys(digests))


def answer_reads(
    location: ObjectLocation, digests: Sequence[str], seconds: int, workers: int = 1
) -> bytes:
    """A server's answer to a batch read of ``digests`` (each one the user may read), as one
    JSON line ``{"objects": [[digest, length], ...], "runs": [[url, range, [[digest,
    length], ...]], ...], "later": [digest, ...]}``, then the bytes of ``objects`` end to
    end. Only packed objects are in it, up to `READ_BATCH_BYTES` of them (what the client
    holds of one answer; a large file's chunks fill it fast), and ``later`` those that did
    not fit, to ask for again. Where the location signs URLs (S3), ``runs``: the objects as
    runs of end-to-end neighbours in a pack, each run's bytes by a URL signed for
    ``seconds`` for that range alone (every byte of it the user may read: no bytes pass
    through the server). Elsewhere, ``objects``, each checked. Any other (not packed,
    missing, corrupted) is left out: the client reads it alone, which says why."""
    rows: list[list[Any]] = []
    pieces: list[bytes | memoryview] = []
    runs: list[list[Any]] = []
    later: list[str] = []
    packs = location.packs
    slots = location.packed(digests) if packs is not None and digests else {}
    picked: dict[str, PackSlot] = {}
    total = 0
    # in the order of the packs, up to the first that does not fit: what fits comes as
    # few runs of neighbours as it can
    for digest in sorted(slots, key=lambda d: (slots[d].pack, slots[d].offset)):
        slot = slots[digest]
        if later or (picked and total + slot.length > READ_BATCH_BYTES):
            later.append(digest)
            continue
        picked[digest] = slot
        total += slot.length
    if location.can_presign and picked:
        from .remote import RemoteLocation  # the one kind that signs URLs

        assert isinstance(location, RemoteLocation)
        found = _runs(picked)
        urls = location.presigned_ranges([(p, o, n) for p, o, n, _ in found], seconds)
        runs = [
            [url, byte_range(o, n), members]
            for url, (_, o, n, members) in zip(urls, found, strict=True)
        ]
    elif packs is not None and picked:
        for digest, data in packs.read_many(picked, workers):
            if data is not None and hash_bytes(data) == digest:
                rows.append([digest, len(data)])
                pieces.append(data)
    header = {"objects": rows, "runs": runs, "later": later}
    return b"".join([json.dumps(header, separators=(",", ":")).encode(), b"\n", *pieces])


def _runs(slots: Mapping[str, PackSlot]) -> list[tuple[str, int, int, list[list[Any]]]]:
    """Packed objects as runs of end-to-end neighbours in one pack, at most
    `READ_BATCH_BYTES` each: (pack, offset, length, [[digest, length], ...]). Every byte
    of a run is one of theirs (never a gap: a neighbour's bytes may be another user's).
    An empty object is left out (no range holds it)."""
    runs: list[tuple[str, int, int, list[list[Any]]]] = []
    for digest, slot in sorted(slots.items(), key=lambda item: (item[1].pack, item[1].offset)):
        if slot.length == 0:
            continue
        if runs:
            pack, offset, length, members = runs[-1]
            if (
                pack == slot.pack
                and offset + length == slot.offset
                and length + slot.length <= READ_BATCH_BYTES
            ):
                members.append([digest, slot.length])
                runs[-1] = (pack, offset, length + slot.length, members)
                continue
        runs.append((slot.pack, slot.offset, slot.length, [[digest, slot.length]]))
    return runs


class ReadAnswer(NamedTuple):
    """A batch read's answer: objects it carries (unchecked: the caller checks each), runs
    to fetch (URL, ``Range``, and the (digest, length) of each object in it, end to end),
    and digests to ask for again."""

    objects: list[tuple[str, bytes]]
    runs: list[tuple[str, str, list[tuple[str, int]]]]
    later: list[str]


_RANGE_RE = re.compile(r"bytes=([0-9]{1,19})-([0-9]{1,19})")


def read_answer(raw: bytes, asked: Collection[str]) -> ReadAnswer:
    """A batch read's answer (see `answer_reads`); `StoreError` for one that is not."""
    line, _, data = raw.partition(b"\n")
    try:
        header = json.loads(line)
        rows, later = header["objects"], header["later"]
        runs = header.get("runs") or []
        if not (
            isinstance(rows, list)
            and isinstance(later, list)
            and isinstance(runs, list)
            and all(_row(row, asked) for row in rows)
            and all(d in asked for d in later)
            and sum(row[1] for row in rows) == len(data)
            and all(_run(run, asked) for run in runs)
        ):
            raise ValueError("rows that do not match what was asked or sent")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise StoreError(
            f"the forebear server's answer to a batch read is malformed: {exc}"
        ) from exc
    found = []
    offset = 0
    for digest, length in rows:
        found.append((digest, data[offset : offset + length]))
        offset += length
    signed = [(url, span, [(d, n) for d, n in members]) for url, span, members in runs]
    return ReadAnswer(found, signed, list(later))


def _row(row: Any, asked: Collection[str]) -> bool:
    return (
        isinstance(row, list)
        and len(row) == 2
        and row[0] in asked
        and type(row[1]) is int
        and row[1] >= 0
    )


def _run(run: Any, asked: Collection[str]) -> bool:
    """A run names an http(s) URL, a range, and objects that fill the range exactly."""
    if not (isinstance(run, list) and len(run) == 3 and isinstance(run[0], str)):
        return False
    url, span, members = run
    match = _RANGE_RE.fullmatch(span) if isinstance(span, str) else None
    return (
        url.startswith(("https://", "http://"))
        and match is not None
        and isinstance(members, list)
        and all(_row(member, asked) and member[1] > 0 for member in members)
        and sum(member[1] for member in members) == int(match[2]) - int(match[1]) + 1
    )
