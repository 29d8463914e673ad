"""Walking a folder to log it: which files it holds, which are left out, and why.

Left out of every version:

- a store's own folders (a folder holding ``forebear.json`` beside ``objects/`` or
  ``meta.db``, or any ``.forebear/`` folder): a version never holds a catalog, objects or
  caches;
- paths matched by ``.forebearignore`` files (gitignore syntax, through `pathspec`) in the
  logged folder, its subfolders, and its parents up to the project's root (the nearest
  folder above holding ``.forebear/`` or ``forebear.toml``), and by ``ignore`` patterns
  given in Python; a deeper file's rules win over a shallower one's, and given patterns over
  all, as in git;
- special files (FIFOs, sockets, devices), which have no bytes to store: reported in
  ``skipped``.

Plain strings and `os.scandir` rather than `pathlib`: a folder can hold millions of files,
and the walk is the whole cost of re-logging unchanged data.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidPath

IGNORE_FILE = ".forebearignore"
STORE_FOLDER = ".forebear"
_STORE_MARKERS = ("objects", "meta.db", "chunklists")


def is_store_folder(path: str) -> bool:
    """Whether a folder is (the object location of) a forebear store."""
    if os.path.basename(path) == STORE_FOLDER:
        return True
    if not os.path.isfile(os.path.join(path, "forebear.json")):
        return False
    return any(os.path.exists(os.path.join(path, marker)) for marker in _STORE_MARKERS)


def _spec(lines: Sequence[str]) -> Any:
    import pathspec  # only when there are rules to apply

    return pathspec.GitIgnoreSpec.from_lines(lines)


@dataclass
class _Rules:
    """One set of gitignore rules, for paths under ``base`` (relative to the logged
    folder, "" for the folder itself); ``outside`` is the path from the rules' own folder
    down to the logged folder, for rules from a parent."""

    base: str
    spec: Any
    outside: str = ""

    def verdict(self, relative: str, is_dir: bool) -> bool | None:
        if self.base and not relative.startswith(self.base):
            return None
        path = self.outside + relative[len(self.base) :]
        result = self.spec.check_file(path + "/" if is_dir else path)
        return None if result.include is None else bool(result.include)


@dataclass
class Walk:
    """The files of one folder to log (see the module docstring for what is left out)."""

    root: str
    follow_outside: bool = False
    ignore: Sequence[str] = ()
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, what it is)
    _rules: list[_Rules] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = os.path.abspath(self.root)
        if is_store_folder(self.root):
            raise InvalidPath(
                f"cannot log {self.root!r}: it is a forebear store's own folder (its objects "
                "and catalog); log the data it was made from instead"
            )
        self._rules.extend(_parent_rules(self.root))

    def _ignored(self, relative: str, is_dir: bool, extra: list[_Rules]) -> bool:
        verdict = False
        for rules in (*self._rules, *extra):
            found = rules.verdict(relative, is_dir)
            if found is not None:
                verdict = found
        return verdict

    def files(self) -> Iterator[str]:
        """Files under the root as relative POSIX paths, symlink-safe."""
        real_root = os.path.realpath(self.root)
        root_prefix = real_root.rstrip(os.sep) + os.sep
        given = [_Rules("", _spec(self.ignore))] if self.ignore else []

        def inside(target: str) -> bool:
            return target == real_root or target.startswith(root_prefix)

        def visit(directory: str, relative: str, ancestors: frozenset[str]) -> Iterator[str]:
            real = os.path.realpath(directory)
            if real in ancestors:
                raise InvalidPath(
                    f"cannot add {directory!r}: a symlink loops back to {real!r}; remove the loop"
                )
            ancestors = ancestors | {real}
            ignore_file = os.path.join(directory, IGNORE_FILE)
            if os.path.isfile(ignore_file):
                self._rules.append(_Rules(relative, _spec(_read_lines(ignore_file))))
            with os.scandir(directory) as it:  # in the order of the paths they make
                entries = sorted(it, key=lambda e: e.name + "/" if e.is_dir() else e.name)
            for entry in entries:
                rel = f"{relative}{entry.name}"
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not os.path.exists(target):
                        raise InvalidPath(f"cannot add {entry.path!r}: it is a broken symlink")
                    if not inside(target) and not self.follow_outside:
                        raise InvalidPath(
                            f"cannot add {entry.path!r}: it is a symlink to {target!r}, "
                            "outside the folder; copy the file in, or pass "
                            "follow_outside_symlinks=True (CLI: --follow-symlinks)"
                        )
                if entry.is_dir():
                    if is_store_folder(entry.path):
                        continue
                    if (self._rules or given) and self._ignored(rel, True, given):
                        continue
                    yield from visit(entry.path, rel + "/", ancestors)
                elif entry.is_file():
                    if (self._rules or given) and self._ignored(rel, False, given):
                        continue
                    yield rel
                else:
                    kind = _special_kind(entry)
                    if not (self._rules or given) or not self._ignored(rel, False, given):
                        self.skipped.append((rel, kind))
            if self._rules and self._rules[-1].base == relative and relative:
                self._rules.pop()  # leaving the folder: its rules no longer apply

        yield from visit(self.root, "", frozenset())


def _special_kind(entry: os.DirEntry[str]) -> str:
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:
        return "unreadable entry"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError as exc:
        raise InvalidPath(f"cannot read {path!r}: {exc.strerror or exc}") from exc


def _parent_rules(root: str) -> list[_Rules]:
    """The rules of `.forebearignore` files above ``root``, up to the project's root (the
    nearest folder holding ``.forebear/`` or ``forebear.toml``); none without one."""
    chain: list[str] = []
    folder = os.path.dirname(root)
    project = None
    while True:
        chain.append(folder)
        if os.path.isdir(os.path.join(folder, STORE_FOLDER)) or os.path.isfile(
            os.path.join(folder, "forebear.toml")
        ):
            project = folder
            break
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if project is None:
        return []
    rules = []
    for folder in reversed(chain):  # outermost first: deeper rules win
        ignore_file = os.path.join(folder, IGNORE_FILE)
        if os.path.isfile(ignore_file):
            outside = os.path.relpath(root, folder).replace(os.sep, "/") + "/"
            rules.append(_Rules("", _spec(_read_lines(ignore_file)), outside))
    return rules
