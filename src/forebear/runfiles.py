"""A run's own files and code, under W&B's names: ``run.save(glob)`` keeps files with the
run (as versions of the artifact ``run-<id>-files``), as does writing them into
``run.dir``; ``run.files()`` / ``run.file(name)`` read them back, and
``run.log_code(root)`` logs the source files as a ``code`` artifact.

They are ordinary versions, so lineage, dedup, ``get`` and gc treat them as any other: a
save that changes nothing makes no new version, and each save stores only new bytes."""

from __future__ import annotations

import glob
import inspect
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ForebearWarning, InvalidInput, NotFound
from .paths import is_name

if TYPE_CHECKING:
    from .artifacts import Artifact
    from .store import Store
    from .views import ArtifactVersion

RUN_FILES_TYPE = "run-files"
SAVE_POLICIES = ("live", "now", "end")


def run_files_name(run_id: str) -> str:
    return f"run-{run_id}-files"


class RunFiles:
    """W&B's ``save``, ``files``, ``file`` and ``log_code`` on `Run`."""

    _store: Store
    _saved_at_end: list[tuple[str, str | None]] | None = None  # globs saved again at finish
    _folder: str | None = None  # run.dir, made when first asked for

    if TYPE_CHECKING:  # provided by Run
        id: str
        project: str
        name: str

        def _require_running(self, action: str) -> None: ...

        def update(self) -> None: ...

        def log_artifact(
            self, artifact: Artifact | str | os.PathLike[str], *args: Any, **options: Any
        ) -> ArtifactVersion: ...

    def save(
        self,
        glob_str: str | os.PathLike[str] | None = None,
        base_path: str | os.PathLike[str] | None = None,
        policy: str = "live",
    ) -> list[str] | bool:
        """Keep the files ``glob_str`` matches with this run, as W&B's ``wandb.save``:
        each under its path relative to ``base_path`` (default: the current folder for a
        relative glob, the glob's folder for an absolute one). With ``policy="live"`` (the
        default) or ``"now"`` they are saved at once, and ``"live"`` ones again when the
        run finishes (only what changed makes a new version); ``"end"`` saves them when it
        finishes. Returns the entry paths saved now. Without ``glob_str``, W&B's older
        ``run.save()``: the run's ``name``, ``tags`` and ``notes`` changed in place are
        saved now (`update`), and it returns True."""
        if glob_str is None:
            self.update()
            return True
        self._require_running("save files")
        if policy not in SAVE_POLICIES:
            raise InvalidInput(f"policy must be one of {', '.join(SAVE_POLICIES)}, not {policy!r}")
        pattern = os.fspath(glob_str)
        base = None if base_path is None else os.fspath(base_path)
        if base is not None and _relative(pattern, base) is None:
            raise InvalidInput(
                f"run.save: {pattern!r} is not under base_path {base!r}; give the folder "
                "that holds the files as base_path, or leave it out"
            )
        if policy in ("live", "end"):
            if self._saved_at_end is None:
                self._saved_at_end = []
            self._saved_at_end.append((pattern, base))
        if policy == "end":
            return []
        return self._save_matching([(pattern, base)])

    @property
    def dir(self) -> str:
        """W&B's ``run.dir``: a new folder for this run's files (made when first asked
        for). What it holds when the run finishes is kept with the run, as `save` keeps
        files, under its path in the folder; the folder itself stays."""
        if self._folder is None:
            import tempfile  # not on the import path of a quick re-log

            self._require_running("give a folder for files")
            self._folder = tempfile.mkdtemp(prefix=f"forebear-run-{self.id}-")
        return self._folder

    def _save_at_end(self) -> None:
        """Save the ``"live"`` and ``"end"`` globs again, and what `dir` holds (called as
        the run finishes)."""
        globs = list(self._saved_at_end or [])
        folder = self._folder
        if folder is not None and any(files for _, _, files in os.walk(folder)):
            globs.append((os.path.join(glob.escape(folder), "**"), folder))
        if globs:
            self._save_matching(globs)

    def files(self) -> list[str]:
        """The files `save` kept with this run (the newest of each path), as
        `ArtifactVersion.files` lists them: each path also answers ``name``, ``size`` and
        ``download(root)``."""
        version = self._saved_files()
        return [] if version is None else version.files()

    def file(self, name: str) -> str:
        """One file `save` kept with this run (see `files`)."""
        for found in self.files():
            if found == name:
                return found
        raise NotFound(f"run {self.id} kept no file {name!r} (see run.files())")

    def log_code(
        self,
        root: str | os.PathLike[str] = ".",
        name: str | None = None,
        include_fn: Callable[..., bool] | None = None,
        exclude_fn: Callable[..., bool] | None = None,
    ) -> ArtifactVersion | None:
        """Log the source files under ``root`` as an artifact of type ``code`` (default
        name ``source-<project>-<run name>``), as W&B's ``run.log_code``: the files
        ``include_fn(path, root)`` accepts (default: ``.py`` files) and ``exclude_fn``
        does not; hidden folders (``.git``, ``.venv``, the store's ``.forebear``) are
        skipped. None when no file matches."""
        import forebear

        self._require_running("log code")
        folder = Path(root).absolute()
        if not folder.is_dir():
            raise InvalidInput(f"log_code: {str(root)!r} is not a folder")
        include = _two_argument(include_fn) if include_fn else lambda p, r: p.endswith(".py")
        exclude = _two_argument(exclude_fn) if exclude_fn else lambda p, r: False
        chosen = name or _artifact_name(f"source-{self.project}-{self.name}")
        artifact = forebear.Artifact(chosen, type="code")
        for current, folders, files in os.walk(folder):
            folders[:] = sorted(f for f in folders if not f.startswith(".") and f != "__pycache__")
            for file in sorted(files):
                path = os.path.join(current, file)
                if include(path, str(folder)) and not exclude(path, str(folder)):
                    artifact.add_file(path, name=Path(path).relative_to(folder).as_posix())
        if not len(artifact):
            return None
        return self.log_artifact(artifact)

    def _save_matching(self, globs: list[tuple[str, str | None]]) -> list[str]:
        import forebear

        found: dict[str, str] = {}
        for pattern, base in globs:
            for path in sorted(glob.glob(pattern, recursive=True)):
                if os.path.isfile(path):
                    found[_entry_path(path, pattern, base)] = path
        if not found:
            patterns = ", ".join(repr(pattern) for pattern, _ in globs)
            warnings.warn(f"run.save: no file matches {patterns}", ForebearWarning, stacklevel=3)
            return []
        before = self._saved_files()
        artifact = (
            before.new_draft()
            if before is not None
            else forebear.Artifact(run_files_name(self.id), type=RUN_FILES_TYPE)
        )
        for entry, path in found.items():
            artifact.add_file(path, name=entry, overwrite=True)
        self.log_artifact(artifact)
        return sorted(found)

    def _saved_files(self) -> ArtifactVersion | None:
        try:
            return self._store.artifact(f"{self.project}/{run_files_name(self.id)}:latest")
        except NotFound:
            return None


def _relative(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` (with ``/``); None when it is not under it."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(base))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return Path(relative).as_posix()


def _entry_path(path: str, pattern: str, base: str | None) -> str:
    """Where a saved file goes: relative to ``base``, else to the current folder (for a
    relative glob) or to the glob's folder before its first wildcard; its name alone
    when that would leave the folder."""
    if base is None:
        if os.path.isabs(pattern):
            fixed = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
            base = fixed if fixed.endswith(os.sep) else os.path.dirname(fixed)
        else:
            base = os.getcwd()
    relative = _relative(path, base)
    return os.path.basename(path) if relative is None else relative


def _two_argument(function: Callable[..., bool]) -> Callable[[str, str], bool]:
    """W&B's include and exclude functions take (path, root), older ones the path alone."""
    try:
        takes_root = len(inspect.signature(function).parameters) >= 2
    except (TypeError, ValueError):
        takes_root = True
    return function if takes_root else (lambda path, root: function(path))


def _artifact_name(wanted: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", wanted).strip("-.") or "source"
    return name[:128] if is_name(name[:128]) else "source"
