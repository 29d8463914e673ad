"""Small files stored from the bytes the hashing workers staged, not read a second time.

A first log of many small files used to read each of them twice: once to hash it (in a
worker process), once more to copy it into a pack. Reading is the cost that counts there
(an open, a read and a close a file), so the workers now also append each small file's
bytes, as they hash them, to a staging file beside the store's packs (see
`forebear.hash_workers`). A staging file is a pack in all but name: the concatenated bytes
of distinct objects, synced, with the digest of the whole.

When objects are stored, each staging file is used once every object it holds has been
looked at:

- if the store lacks every one of them, the staging file is published as a pack as it is
  (renamed into place: no byte is copied), its index written and recorded like any pack's;
- otherwise only the objects the store lacks are copied out of it into the pack being
  filled, each checked against its digest as it goes in (read from one open file, not
  from each source file);
- a staging file that is gone (a gc cleaned it away) or cannot be read: the objects are
  stored from their source files, as before.

Every object is registered as pending (by the caller) before any of this, so a gc beside
it keeps them; a staging file never published is removed when the log ends, or by gc
(``tmp/`` files an hour old). The bytes staged are the bytes hashed: no stat of the
source is needed afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ObjectNotFound
from .hash_workers import StagedFile
from .hashing import Progress
from .objects.packs import Packs, SealedPack

# (local path, digest) of files to store the ordinary way, and each one's size
PutFiles = Callable[[list[tuple[str, str]], dict[str, int]], None]


@dataclass
class _Filling:
    """What the rows said of one staging file so far."""

    seen: set[str] = field(default_factory=set)  # its objects met in rows
    wanted: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # offset, size, path


class Staging:
    """The staging files of one prepared artifact: the finished ones by name, and the
    path of every one begun (all removed by `close`, unless published)."""

    def __init__(self, finished: dict[str, StagedFile], began: Sequence[str]) -> None:
        self.finished = finished
        self.began = list(began)

    def close(self) -> None:
        for path in self.began:
            with contextlib.suppress(OSError):  # published (renamed away), or never made
                os.unlink(path)


class Adoption:
    """Staged objects taken for one store of objects, batch by batch (`take`), and the
    staging files used as soon as all their objects were seen (`finish` for the rest)."""

    def __init__(self, staging: Staging, packs: Packs, put: PutFiles, progress: Progress) -> None:
        self.staging = staging
        self.packs = packs
        self.put = put
        self.progress = progress
        self.filling: dict[str, _Filling] = {}

    def take(
        self, batch: Iterable[Sequence[Any]], whole: list[tuple[str, str]], sizes: dict[str, int]
    ) -> list[tuple[str, str]]:
        """Of ``whole`` (local path, digest) files to store, those whose bytes are staged
        are taken (stored once their staging file is complete); the rest are returned, to
        store the ordinary way. ``batch``: the rows of these files (the staged place of a
        file is its last two values)."""
        where: dict[str, tuple[str, int]] = {}
        for row in batch:
            name, offset = row[-2], row[-1]
            if name is None or name not in self.staging.finished:
                continue
            self.filling.setdefault(name, _Filling()).seen.add(row[1])
            where.setdefault(row[1], (name, offset))
        rest: list[tuple[str, str]] = []
        taken = 0
        for path, digest in whole:
            place = where.get(digest)
            if place is None or not self.packs.takes(sizes[digest]):
                rest.append((path, digest))
                continue
            self.filling[place[0]].wanted[digest] = (place[1], sizes[digest], path)
            taken += sizes[digest]
        self.progress(taken)
        for name in [n for n, f in self.filling.items() if self._complete(n, f)]:
            self._use(name, self.filling.pop(name))
        return rest

    def finish(self) -> None:
        """Use the staging files not yet complete (what they hold that is wanted)."""
        while self.filling:
            name, filling = self.filling.popitem()
            self._use(name, filling)

    def _complete(self, name: str, filling: _Filling) -> bool:
        return len(filling.seen) >= self.staging.finished[name].objects

    def _use(self, name: str, filling: _Filling) -> None:
        staged = self.staging.finished[name]
        if not filling.wanted:
            return
        slots = {d: (offset, size) for d, (offset, size, _) in filling.wanted.items()}
        if len(slots) == staged.objects and _tiles(slots.values(), staged.size):
            try:
                os.utime(staged.path)  # gc takes an old pack nobody recorded for a stray
                self.packs.adopt(SealedPack(staged.path, staged.digest, staged.size, slots))
                return
            except (FileNotFoundError, ObjectNotFound):  # a gc removed it: from the sources
                pass
        else:
            try:
                fd = os.open(staged.path, os.O_RDONLY)
            except OSError:
                pass
            else:
                try:
                    for digest, (offset, size, path) in filling.wanted.items():
                        self.packs.add_chunk(fd, offset, size, digest, path)
                    return
                finally:
                    os.close(fd)
        files = [(path, digest) for digest, (_, _, path) in filling.wanted.items()]
        self.put(files, {d: size for d, (_, size, _) in filling.wanted.items()})


def _tiles(slots: Iterable[tuple[int, int]], size: int) -> bool:
    """Whether the slots, end to end, are exactly the file's ``size`` bytes."""
    end = 0
    for offset, length in sorted(slots):
        if offset != end:
            return False
        end += length
    return end == size


def staging_folder(objects_root: str) -> str:
    """Where the hashing workers stage small files for a local store with packs: its
    temporary folder, on the same filesystem as its packs (a staging file is renamed)."""
    return os.path.join(os.path.abspath(objects_root), "tmp")
