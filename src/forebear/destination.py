"""Writing verified bytes into a local folder that forebear does not own (a download
destination), safely against what else may be in it or happen to it meanwhile.

- **Directory handles.** Every folder on the way to a file is opened relative to its
  parent's handle, without following symlinks, and files are created, renamed and removed
  relative to their folder's handle. No path is resolved again after it was checked, so a
  folder swapped for a symlink between the check and the write cannot redirect the write.
- **Nothing half-written is visible.** Bytes go to an anonymous file in the target folder
  (Linux ``O_TMPFILE``; elsewhere a short hidden temporary name, locked while written),
  checked, then given a name and renamed over the target in one step. A process killed
  while writing leaves nothing, or at most a locked-then-abandoned temporary file that the
  next download into that folder removes (an unlocked one; never another live writer's).
- **Short temporary names** (``.forebear-<12 hex>.tmp``), so a target whose own name is
  255 bytes long can still be written.

This module knows nothing of stores, versions or runs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from .errors import ForebearError, InvalidInput, InvalidPath, StoreError
from .hashing import BLOCK_SIZE, Progress, read_buffer
from .links import LINK_TYPES, may_reflink, reflink
from .readers import CheckedAtEnd

TEMP_RE = re.compile(r"^\.forebear-[0-9a-f]{12}\.tmp$")
_NO_FOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PROC_FD = "/proc/self/fd"
# One copy buffer per thread, kept: a new 1 MiB buffer for each file cost 256 page faults
# and a zeroing, which made downloads of many small files ten times slower than writing them.
# A copy takes it while it runs: a stream that writes another file while being read (a
# chunk fetched into the cache) gets a buffer of its own, never the one being filled.
_BUFFERS = threading.local()


@contextlib.contextmanager
def _copy_buffer() -> Iterator[memoryview]:
    kept: memoryview | None = getattr(_BUFFERS, "view", None)
    _BUFFERS.view = None
    view = kept if kept is not None else read_buffer()
    try:
        yield view
    finally:
        _BUFFERS.view = view


def temp_name() -> str:
    return f".forebear-{uuid.uuid4().hex[:12]}.tmp"


def check_link_type(link: str) -> str:
    if link not in LINK_TYPES:
        raise InvalidInput(f"unknown link type {link!r}: use one of {', '.join(LINK_TYPES)}")
    return link


@contextlib.contextmanager
def local_errors(what: str) -> Iterator[None]:
    """Local filesystem failures while writing a destination, as one clear error."""
    try:
        yield
    except ForebearError:
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StoreError(
                f"{what}: no space left on device; free some space and run it again"
            ) from exc
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise StoreError(f"{what}: {exc.strerror}; choose a folder you can write to") from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise InvalidPath(f"{what}: the name is too long for this filesystem") from exc
        raise StoreError(f"{what}: {exc.strerror or exc}") from exc


class Target(NamedTuple):
    """Where one file goes: its folder's handle, its name there, and its path (for
    messages, and for reading what is there already)."""

    folder: int
    name: str
    path: str


class Destination:
    """A folder being filled with a version's files, reached through directory handles.

    Entries should come in path order. Their folders stay open until `release` (call it
    after each batch, or once `open_folders` grows: each open folder is a file handle),
    and a folder is swept of abandoned temporary files once the walk has left it for good.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        with local_errors(f"cannot write to {str(root)!r}"):
            try:
                root.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise InvalidPath(
                    f"cannot download into {str(root)!r}: it is a file, not a folder; choose "
                    "another destination"
                ) from None
            except NotADirectoryError:
                raise InvalidPath(
                    f"cannot download into {str(root)!r}: part of that path is a file; "
                    "choose another destination"
                ) from None
            # the root is the user's choice: follow it once, then never re-resolve anything
            self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._open: dict[str, int] = {}  # folder (relative path) -> handle, until release()
        self._chain: list[str] = []  # the folders of the last entry, outermost first
        self._proc = os.path.isdir(_PROC_FD)

    def __enter__(self) -> Destination:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def open_folders(self) -> int:
        return len(self._open)

    def release(self) -> None:
        """Close the folder handles of the targets handed out so far."""
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def close(self) -> None:
        if self._root_fd < 0:
            return
        try:
            while self._chain:
                self._finish(self._chain.pop())
            sweep(self._root_fd)
        finally:
            self.release()
            os.close(self._root_fd)
            self._root_fd = -1

    def _finish(self, folder: str) -> None:
        """The walk has left ``folder`` for good: sweep it."""
        fd = self._open.get(folder)
        if fd is not None:
            sweep(fd)
            return
        with contextlib.suppress(InvalidPath, StoreError):
            fd = self._folder(folder, folder + "/", create=False)
            try:
                sweep(fd)
            finally:
                self._open.pop(folder, None)
                os.close(fd)

    def target(self, entry_path: str) -> Target:
        """The folder handle and name for an entry, creating its folders; `InvalidPath`
        when a folder on the way is a symlink or a file."""
        parts = entry_path.split("/")
        folders = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        keep = 0
        while keep < min(len(folders), len(self._chain)) and self._chain[keep] == folders[keep]:
            keep += 1
        while len(self._chain) > keep:
            self._finish(self._chain.pop())
        self._chain = folders
        folder = self._folder(folders[-1], entry_path) if folders else self._root_fd
        return Target(folder, parts[-1], os.path.join(str(self.root), entry_path))

    def _folder(self, folder: str, entry_path: str, create: bool = True) -> int:
        """The handle of a folder below the root, opening (and creating) it through its
        parent's handle."""
        found = self._open.get(folder)
        if found is not None:
            return found
        parent, _, part = folder.rpartition("/")
        parent_fd = self._folder(parent, entry_path, create) if parent else self._root_fd
        fd = self._enter(parent_fd, part, entry_path, create)
        self._open[folder] = fd
        return fd

    def _enter(self, parent: int, part: str, entry_path: str, create: bool) -> int:
        with local_errors(f"cannot write {entry_path!r}"):
            try:
                return os.open(part, _NO_FOLLOW_DIR, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=parent)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
            try:
                return os.open(part, _NO_FOLLOW_DIR, dir_fd=parent)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                if stat.S_ISLNK(os.stat(part, dir_fd=parent, follow_symlinks=False).st_mode):
                    raise InvalidPath(
                        f"refusing to write {entry_path!r}: its folder {part!r} in the "
                        "destination is a symlink, which could lead anywhere; remove the "
                        "link and try again"
                    ) from None
                raise InvalidPath(
                    f"cannot write {entry_path!r}: {part!r} in the destination is a "
                    "file, not a folder; move it away and try again"
                ) from None

    def read_path(self, target: Target) -> str:
        """A path that reads what is at ``target`` through its folder's handle (Linux), not
        through the folder names again."""
        if self._proc:
            return f"/proc/{os.getpid()}/fd/{target.folder}/{target.name}"
        return target.path

    def existing(self, target: Target) -> os.stat_result | None:
        """What is at the target now (not following a symlink there), or None."""
        try:
            return os.stat(target.name, dir_fd=target.folder, follow_symlinks=False)
        except FileNotFoundError:
            return None


def sweep(folder: int) -> None:
    """Remove temporary files that writers killed midway left in a folder: only those no
    live writer holds (a writer keeps its temporary file locked while it writes)."""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        names = [e.name for e in entries if TEMP_RE.fullmatch(e.name)]
    for name in names:
        with contextlib.suppress(OSError):
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                os.unlink(name, dir_fd=folder)
                continue
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer's
            finally:
                os.close(fd)
            os.unlink(name, dir_fd=folder)


class _NewFile:
    """A file being written in a folder, invisible (or locked) until `publish`."""

    def __init__(self, folder: int) -> None:
        self.folder = folder
        self.name: str | None = None
        flags = os.O_WRONLY | os.O_CLOEXEC
        tmpfile = getattr(os, "O_TMPFILE", 0)
        self.fd = -1
        if tmpfile and os.path.isdir(_PROC_FD):
            try:
                self.fd = os.open(".", flags | tmpfile, 0o666, dir_fd=folder)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
        if self.fd < 0:  # no anonymous files here: a short hidden name, locked at once
            self.name = temp_name()
            self.fd = os.open(
                self.name, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder
            )
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def write_all(self, data: memoryview | bytes) -> None:
        view = memoryview(data)
        while len(view):
            written = os.write(self.fd, view)
            if written <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[written:]

    def publish(self, name: str) -> None:
        """Give the finished file its final name, replacing whatever was there (a file or a
        symlink; never following it). An anonymous file is linked straight to its name when
        nothing holds it (a download into an empty folder): one change to the folder, not
        a link and then a rename, each of which the filesystem journals."""
        if self.name is None:
            try:
                os.link(f"{_PROC_FD}/{self.fd}", name, dst_dir_fd=self.folder)
                return
            except FileExistsError:  # something is there: replaced by a rename below
                pass
            self.name = temp_name()
            os.link(f"{_PROC_FD}/{self.fd}", self.name, dst_dir_fd=self.folder)
        try:
            os.rename(self.name, name, src_dir_fd=self.folder, dst_dir_fd=self.folder)
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise InvalidPath(
                    f"cannot write {name!r}: a folder of that name is in the destination; "
                    "move it away and try again"
                ) from None
            raise
        self.name = None

    def close(self) -> None:
        if self.name is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.name, dir_fd=self.folder)
        os.close(self.fd)


def write_stream(target: Target, stream: BinaryIO, progress: Progress | None = None) -> None:
    """Write everything ``stream`` gives at ``target``, atomically: nothing there changes
    unless the stream ends without error (a checked stream raises at its end)."""
    with local_errors(f"cannot write {target.path!r}"), _copy_buffer() as view:
        new = _NewFile(target.folder)
        try:
            readinto = getattr(stream, "readinto", None)
            while True:
                if readinto is not None:
                    n = readinto(view)
                    block: memoryview | bytes = view[:n]
                else:
                    block = stream.read(BLOCK_SIZE)
                    n = len(block)
                if not n:
                    break
                new.write_all(block)
                if progress is not None:
                    progress(n)
            new.publish(target.name)
        finally:
            new.close()


def save_stream(
    stream: BinaryIO, path: str | os.PathLike[str], progress: Progress | None = None
) -> None:
    """`write_stream` to a path in a folder forebear owns (such as its cache)."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    with local_errors(f"cannot write {path!r}"):
        os.makedirs(folder, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        write_stream(Target(fd, os.path.basename(path), path), stream, progress)
    finally:
        os.close(fd)


def place_object(
    target: Target,
    source: str,
    digest: str,
    link: str = "auto",
    progress: Progress | None = None,
    label: str | None = None,
) -> None:
    """Put a local object file's bytes at ``target`` the way ``link`` says, after checking
    they match ``digest`` (`IntegrityError`, and nothing changed at the target, if not)."""
    check_link_type(link)
    name = label or repr(source)
    with local_errors(f"cannot write {target.path!r}"):
        if link in ("auto", "reflink"):
            if _clone(target, source, digest, name, progress):
                return
            if link == "reflink":
                raise InvalidInput(
                    f"cannot reflink {name}: the filesystem of {target.path!r} cannot share "
                    "blocks with the store (reflinks need btrfs, XFS or similar on the same "
                    "filesystem); use link 'auto' or 'copy'"
                )
        if link in ("auto", "reflink", "copy"):
            with open(source, "rb", buffering=0) as raw:
                checked = CheckedAtEnd(raw, digest, name)  # raises at the end if corrupted
                write_stream(target, checked, progress)  # type: ignore[arg-type]
            return
        _check_file(source, digest, name, progress)
        for _attempt in range(3):  # a sweeper may take an unlocked link name: make it again
            temp = temp_name()
            try:
                if link == "hardlink":
                    os.link(source, temp, dst_dir_fd=target.folder)
                else:
                    os.symlink(os.path.abspath(source), temp, dir_fd=target.folder)
            except OSError as exc:
                if link == "hardlink" and exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise InvalidInput(
                        f"cannot hardlink {name} to {target.path!r}: {exc.strerror}; hardlinks "
                        "need the store and the destination on one filesystem; use link "
                        "'auto' or 'copy'"
                    ) from exc
                raise
            try:
                os.rename(temp, target.name, src_dir_fd=target.folder, dst_dir_fd=target.folder)
                return
            except FileNotFoundError:
                continue
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=target.folder)
                raise
        raise StoreError(f"cannot write {target.path!r}: its temporary link kept disappearing")


def _clone(target: Target, source: str, digest: str, name: str, progress: Progress | None) -> bool:
    """A copy-on-write clone at the target, checked; False where none can be made here."""
    with open(source, "rb", buffering=0) as src:
        if not may_reflink(os.fstat(src.fileno()).st_dev, os.fstat(target.folder).st_dev):
            return False
        new = _NewFile(target.folder)
        try:
            if not reflink(src.fileno(), new.fd):
                return False
            # the clone itself is checked: it is what the user gets
            with open(f"{_PROC_FD}/{new.fd}", "rb", buffering=0) as clone:
                checked = CheckedAtEnd(clone, digest, name)
                while n := checked.read(BLOCK_SIZE):
                    if progress is not None:
                        progress(len(n))
            new.publish(target.name)
            return True
        finally:
            new.close()


def _check_file(source: str, digest: str, name: str, progress: Progress | None) -> None:
    with open(source, "rb", buffering=0) as raw:
        checked = CheckedAtEnd(raw, digest, name)
        while block := checked.read(BLOCK_SIZE):
            if progress is not None:
                progress(len(block))
