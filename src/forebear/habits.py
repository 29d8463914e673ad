"""The names W&B users arrive with, for what forebear does: ``logged_by()``, ``used_by()``,
``get_entry(path).download()``, ``file()``, ``checkout(root)``, ``wait()`` on a version;
``logged_artifacts()`` and ``used_artifacts()`` on a run."""

from __future__ import annotations

import copy
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import artifacts, folders
from . import settings as config
from .errors import ForebearError, ForebearWarning, InvalidInput, InvalidPath, NotFound
from .history_buffer import HistoryBuffer
from .history_rows import HistoryRows
from .jsonvalues import config_values, json_dict
from .logged_values import holds_kept, kept_form
from .manifest import ManifestEntry
from .metrics import (
    MetricSummaries,
    check_step,
    history_frame,
    numeric_values,
    rows_holding,
    thinned,
)
from .paths import normalise_entry_path
from .processes import collector_paused
from .tables import Table, table_path
from .version_files import Entry

if TYPE_CHECKING:
    from .media import Image
    from .media_files import MediaFile
    from .runs import Artifact as SavableArtifact
    from .store import Store
    from .views import ArtifactVersion, Run

T = TypeVar("T")


class RunValues(dict[str, Any]):
    """A live run's ``config`` or ``summary``, as W&B's: a dict whose every change is
    saved at once (``run.config.update(...)``, ``run.summary["best"] = 0.9``), and whose
    keys read and write as attributes too (``run.config.lr``). A change is checked as
    `forebear.init` checks a config (values JSON cannot hold become strings; NaN is
    refused in a config, kept as the text ``"NaN"`` in a summary, as `log` keeps it) and
    kept only once it is saved."""

    def __init__(
        self,
        values: Mapping[str, Any],
        what: str,
        save: Callable[[dict[str, Any]], None],
        lock: threading.RLock | None = None,
    ) -> None:
        """``lock``: held while a change is saved and made (a run's rows are written
        with its summary under it, from a thread of their own: see `HistoryBuffer`)."""
        super().__init__(values)
        self.__dict__.update(_what=what, _save=save, _lock=lock or threading.RLock())

    def _change(self, change: Callable[[dict[str, Any]], T]) -> T:
        with self._lock:
            after = dict(self)
            result = change(after)
            checked = json_dict(after, self._what, non_finite_as_text=self._what == "summary")
            if checked != self:  # nothing to save otherwise (``run.summary.update()``)
                self._save(checked)
            dict.clear(self)
            dict.update(self, checked)
            return result

    def __setitem__(self, key: str, value: Any) -> None:
        self._change(lambda d: d.__setitem__(key, value))

    def __delitem__(self, key: str) -> None:
        self._change(lambda d: d.__delitem__(key))

    def update(self, *args: Any, allow_val_change: bool | None = None, **kwargs: Any) -> None:
        """``dict.update``, also taking what W&B's ``config.update`` takes: an argparse
        ``Namespace``, absl flags or (a config's) the path of a YAML file, and
        ``allow_val_change`` (values may always change)."""
        del allow_val_change
        given = [config_values(arg, files=self._what == "config") for arg in args]
        for arg in given:
            if not isinstance(arg, dict):
                kind = type(arg).__name__
                raise InvalidInput(f"{self._what}.update takes a dict or a Namespace, not {kind}")
        self._change(lambda d: d.update(*given, **kwargs))

    def setdefault(self, key: str, default: Any = None) -> Any:
        return self._change(lambda d: d.setdefault(key, default))

    def setdefaults(self, defaults: Mapping[str, Any]) -> None:
        """W&B's ``config.setdefaults(d)``: the values of ``defaults`` whose keys are not
        set yet, saved at once."""
        self._change(lambda d: d.update({k: v for k, v in dict(defaults).items() if k not in d}))

    def pop(self, key: str, *default: Any) -> Any:
        return self._change(lambda d: d.pop(key, *default))

    def popitem(self) -> tuple[str, Any]:
        return self._change(lambda d: d.popitem())

    def clear(self) -> None:
        self._change(lambda d: d.clear())

    def __ior__(self, other: Any) -> RunValues:  # type: ignore[override,misc]
        self.update(other)
        return self

    @property
    def _json_dict(self) -> dict[str, Any]:
        """W&B's ``run.summary._json_dict``, which its guide to exporting runs reads: a
        plain copy."""
        return dict(self)

    def as_dict(self) -> dict[str, Any]:
        """W&B's ``config.as_dict()``: a plain copy."""
        return dict(self)

    # a copy, deep or pickled, is a plain dict: changing it saves nothing
    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self), memo)

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (dict(self),)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the run's {self._what} has no {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"the run's {self._what} has no {name!r}") from None


class VersionHabits:
    """W&B's names on `ArtifactVersion` (which provides the rest)."""

    _store: Store

    def _this(self) -> ArtifactVersion:
        return cast("ArtifactVersion", self)

    def logged_by(self) -> Run | None:
        """The run that logged this version (its first producer), or None."""
        return self._this().producer

    def get(self, name: str) -> Table | Image | MediaFile | None:
        """W&B's ``artifact.get(name)``: the `Table` added as ``name`` (kept as
        ``<name>.table.json``), or the picture, sound, video or page (kept as
        ``<name>.image-file.json`` and the like, see `forebear.kept_media`), read back
        with the media its cells name; None when the version has none of them."""
        from .kept_media import read_added, read_cells

        version = self._this()
        name = normalise_entry_path(name)
        path = table_path(name)
        try:
            version.entry(path)
        except NotFound:
            return read_added(version, name, version.ref)  # type: ignore[no-any-return]
        with version.open(path) as file:
            table = Table.from_bytes(file.read(), f"{version.ref} {path}")
        read_cells(version, table.data)  # its media, from their files, as W&B gives them
        return table

    def __getitem__(self, name: str) -> Table | Image | MediaFile | None:
        return self.get(name)

    @property
    def qualified_name(self) -> str:
        """W&B's ``entity/project/name:v3``, without the entity (a store is the team's):
        ``project/name:v3``, as `qualified_ref`."""
        return self._this().qualified_ref

    @property
    def state(self) -> str:
        """W&B's state of a logged version: ``"COMMITTED"``, or ``"DELETED"`` once
        deleted (an `Artifact` not logged yet is ``"PENDING"``)."""
        return "DELETED" if self._this().deleted else "COMMITTED"

    def used_by(self) -> list[Run]:
        """The runs that used this version, first one first."""
        return self._this().consumers

    def wait(self, timeout: float | None = None) -> ArtifactVersion:
        """A logged version is committed when `log_artifact` returns: nothing to wait for
        (W&B uploads in the background; forebear does not)."""
        del timeout
        return self._this()

    def new_draft(self) -> SavableArtifact:
        """A new `Artifact` of the same name and type that starts from this version's
        files, without local copies: add, replace (`remove` then add) or `remove` files,
        then log it; only what changed is read and stored, and the unchanged entries are
        never loaded (a draft of a million files costs what its changes cost). Purged
        files are left out."""
        import forebear  # its Artifact, the one that can save() itself

        version = self._this()
        backend = self._store.backend
        purged = frozenset(r.path for r in version.redactions())

        def present(paths: list[str]) -> set[str]:
            return set(backend.entries_at(version.id, paths)) - purged

        def count_under(folder: str) -> int:
            gone = sum(1 for path in purged if path.startswith(folder))
            return backend.entry_count(version.id, folder) - gone

        def entries() -> Iterator[ManifestEntry]:
            return (e for e in version.iter_entries() if e.path not in purged)

        base = artifacts.DraftBase(
            version.id, version.ref, self._store, version.project,
            version.file_count - len(purged), present, count_under, entries,
        )  # fmt: skip
        draft = forebear.Artifact.draft(
            base, version.name, version.type, version.description,
            copy.deepcopy(version.metadata),
        )  # fmt: skip
        if purged:
            warnings.warn(
                f"{version.ref}: {len(purged)} purged files are not in the draft: "
                f"{', '.join(sorted(purged)[:5])}",
                ForebearWarning,
                stacklevel=2,
            )
        return draft

    def get_entry(self, path: str) -> Entry:
        """One file of the version, to read or download alone."""
        version = self._this()
        return Entry(version, version.entry(normalise_entry_path(path)))

    def get_path(self, path: str) -> Entry:
        """`get_entry` under its older W&B name."""
        return self.get_entry(path)

    def file(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Download the one file of a version that holds exactly one (a model, a table)
        into ``root`` (default: the version's cache folder) and return its path."""
        version = self._this()
        if version.file_count != 1:
            raise InvalidInput(
                f"{version.ref} holds {version.file_count} files, and file() is for a "
                "version of one: download() them all, or get_entry(path).download() one"
            )
        (only,) = version.files()
        return version.get_entry(only).download(root)

    def checkout(self, root: str | os.PathLike[str] | None = None, *, link: str = "auto") -> Path:
        """Make ``root`` hold exactly this version: every file verified, and every other
        file under it removed (links as links, never what they point at). ``root`` is made
        when missing; a folder holding the store itself is refused. ``link`` as in
        `download`."""
        version = self._this()
        if root is None:
            return version.download(link=link)
        target = Path(root).absolute()
        _refuse_store_inside(self._store, target)
        folders.remove_extras(set(version.files()), target)
        return version.download(target, link=link)


def _described(word: str) -> property:
    """W&B's run attribute ``word``, one of the words `init` keeps in the run's context."""
    return property(lambda run: run.context.get(word), doc=f"W&B's ``{word}`` (from `init`).")


class RunHabits:
    """W&B's names on `Run`: its steps and metric summaries, its descriptions, what it
    logged and used, and distributed artifacts."""

    _store: Store
    _next_step: int | None = None  # the step a log without one goes to (W&B's run.step)
    _metrics: MetricSummaries | None = None
    _history_buffer: HistoryBuffer | None = None  # the rows this process's run has waiting

    if TYPE_CHECKING:  # provided by Run
        id: str
        project: str
        status: str
        summary: RunValues
        context: dict[str, Any]
        _lock: threading.RLock  # what its summary changes under

        def _require_running(self, action: str) -> None: ...

    def log(
        self, values: dict[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """Merge values (metrics) into the run's summary, and keep the numeric ones in its
        history (`history`), as W&B's ``wandb.log`` does: without ``step`` at the run's
        current `step`, which then moves on one (unless ``commit=False``, which adds more
        values to the same step); with ``step`` at that step, which becomes the current one
        (moving on past it only with ``commit=True``). Values logged at one step in several
        calls make one row. `define_metric` chooses what the summary keeps. A value that
        is NaN or infinite (a diverged loss) is kept in the summary as ``"NaN"``,
        ``"Infinity"`` or ``"-Infinity"`` and left out of the history (a gap in its
        chart), and the run goes on. This process's run writes its rows in batches, with
        the summary of that moment (`HistoryBuffer`): a call does not wait for the store."""
        self._require_running("log values")
        current = self.step
        at = current if step is None else check_step(step)
        if isinstance(values, dict) and holds_kept(values):
            values = {key: self._log_kept(key, value, at) for key, value in values.items()}
        logged = json_dict(values, "logged values", non_finite_as_text=True)
        numbers = numeric_values(logged, at)
        with self._lock:
            summary = (self._metrics or MetricSummaries()).apply(logged, self.summary)
            if self._history_buffer is None:  # a run read back: written as it comes
                self._store.backend.log_history(self.id, [at], [numbers], summary)
            dict.clear(self.summary)
            dict.update(self.summary, summary)
            if self._history_buffer is not None:  # written soon, with the summary then
                self._history_buffer.add(at, numbers)
        if step is not None and step > current:
            self._next_step = step
        if commit is True or (commit is None and step is None):
            self._next_step = max(current, at) + 1

    def _start_history(self) -> None:
        """Keep the rows this process's run logs in a `HistoryBuffer`, written with the
        summary of the moment."""
        backend = self._store.backend

        def write(steps: list[int], values: list[dict[str, float]]) -> None:
            backend.log_history(self.id, steps, values, dict(self.summary))

        self._history_buffer = HistoryBuffer(write, self._lock, f"forebear-history-{self.id}")

    def _end_history(self) -> None:
        """Write the rows still waiting, as the run finishes (a failure warns: the run
        still ends)."""
        if self._history_buffer is not None:
            try:
                self._history_buffer.close()
            except ForebearError as exc:
                warnings.warn(
                    f"run {self.id}: logged values not saved: {exc}", ForebearWarning, stacklevel=3
                )

    def _written_history(self) -> list[dict[str, Any]]:
        """The run's history in its store, once the rows waiting are written."""
        if self._history_buffer is not None:
            self._history_buffer.flush()
        return self._store.backend.run_history(self.id)

    def _log_kept(self, key: str, value: Any, step: int) -> Any:
        """A value more than a number (a `Table`, images, audio, video, a page, a
        `Histogram`, a `Chart`) logged under ``key`` at ``step``: kept as a version of its
        own (see `kept_form`), which the summary then names, as W&B keeps them with the
        run; in a dict, each under ``key.inner``. Any other value is returned as it is."""
        if isinstance(value, dict) and holds_kept(value):  # kept under "outer.inner"
            return {k: self._log_kept(f"{key}.{k}", v, step) for k, v in value.items()}
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(key)).strip("-.") or "value"
        kept = kept_form(name, value, step)
        if kept is None:
            return value
        artifact = self._kept_as(name, kept.ending, kept.type)
        for path, data in kept.files.items():
            with artifact.new_file(path, mode="wb") as file:
                file.write(data)
        version = cast("Run", self).log_artifact(artifact, metadata=kept.metadata)
        return {"_type": kept.record["_type"], "artifact": version.qualified_ref, **kept.record}

    def _kept_as(self, name: str, ending: str, type_: str) -> artifacts.Artifact:
        """The artifact ``run-<id>-<name><ending>`` of what ``log`` keeps, ``name`` cut to
        100 characters, and to fewer where a long run id leaves less of the 128 a name may
        have."""
        prefix = f"run-{self.id}-"
        room = min(100, 128 - len(prefix) - len(ending))
        return artifacts.Artifact(prefix + name[:room] + ending, type=type_)

    @property
    def step(self) -> int:
        """The step a `log` without one goes to: 0 in a new run, then one more after each."""
        if self._next_step is None:
            steps = [row["step"] for row in self.history()]
            self._next_step = max(steps) + 1 if steps else 0
        return self._next_step

    def define_metric(
        self,
        name: str,
        step_metric: str | None = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> None:
        """What the summary keeps of metric ``name`` (or of every metric a glob such as
        ``"val/*"`` matches), as in W&B: ``summary="min"`` (or ``"max"``, ``"mean"``,
        ``"first"``, ``"last"``, ``"best"`` with ``goal="minimize"``/``"maximize"``, several
        joined by commas) keeps ``{"min": ...}``; ``"none"`` keeps nothing; the default
        (``"copy"``) the last value. ``step_metric``, ``step_sync`` and ``hidden`` only
        change W&B's charts: the history keeps every value logged, at its step."""
        del step_metric, step_sync, hidden
        if self._metrics is None:
            self._metrics = MetricSummaries()
        self._metrics.define(name, summary, goal, overwrite)

    def history(
        self,
        samples: int | None = None,
        keys: Sequence[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = False,
        stream: str = "default",
    ) -> Any:
        """The values logged with a step, one row per step, oldest first: ``step`` and the
        values logged at it; the list also answers as W&B's DataFrame does
        (``.to_csv(...)``, ``["loss"]``: see `forebear.history_rows`). W&B's arguments:
        ``keys`` keeps the rows that hold every one of them, with just those; ``samples``
        thins the rows to that many, evenly spread (the first and last kept);
        ``pandas=True`` returns a pandas DataFrame with W&B's ``_step`` column (``x_axis``
        and ``stream`` are accepted; every row has its step)."""
        del x_axis, stream
        rows = rows_holding(self._written_history(), keys)
        if samples is not None:
            if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
                raise InvalidInput(f"samples must be a whole number from 1, not {samples!r}")
            rows = thinned(rows, samples)
        return history_frame(rows) if pandas else HistoryRows(rows)

    def scan_history(
        self,
        keys: Sequence[str] | None = None,
        page_size: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """W&B's history rows, oldest first: ``step`` (also as ``_step``) and the values
        logged at it; with ``keys``, only the rows that hold every one of them, with just
        those; ``min_step`` included, ``max_step`` excluded."""
        del page_size
        for row in rows_holding(self._written_history(), keys):
            at = row["step"]
            below = min_step is not None and at < min_step
            if not (below or (max_step is not None and at >= max_step)):
                yield {**row, "_step": at}

    @property
    def path(self) -> str:
        """``project/id``: W&B's ``entity/project/id`` without the entity (`Api.run` takes
        it)."""
        return f"{self.project}/{self.id}"

    @property
    def created_at(self) -> str:
        """W&B's: when the run started, as ISO 8601 text (`started_at`, a datetime)."""
        return cast("Run", self).started_at.isoformat()

    @property
    def state(self) -> str:
        """W&B's name for `status`: ``running``, ``finished``, ``failed`` or ``crashed``."""
        return self.status

    entity = _described("entity")
    job_type = _described("job_type")
    group = _described("group")

    def watch(self, models: object = None, *args: object, **options: object) -> None:
        """Accepted so that W&B training code runs: forebear records no gradients or
        parameters (log what you need with `log`)."""
        del models, args, options

    def unwatch(self, models: object = None) -> None:
        """See `watch`."""
        del models

    def logged_artifacts(self) -> list[ArtifactVersion]:
        """The versions this run logged (`outputs`)."""
        return cast("Run", self).outputs

    def used_artifacts(self) -> list[ArtifactVersion]:
        """The versions this run used (`inputs`)."""
        return cast("Run", self).inputs

    def upsert_artifact(
        self,
        artifact: artifacts.Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] = (),
        *,
        distributed_id: str,
        progress: bool | None = None,
    ) -> None:
        """Add this process's files to the version that several processes build under
        ``distributed_id`` (each path from one process); nothing is visible until
        `finish_artifact`. ``aliases`` are given at the finish."""
        del aliases  # W&B accepts them here too; they take effect with the version
        run = cast("Run", self)
        self._require_running("add to a distributed artifact")
        with collector_paused():  # as in `Run.log_artifact`
            chosen = artifacts.distributed_part(artifact, name, type)
            run.store.backend.upsert_part(
                chosen, project=run.project, run_id=run.id,
                distributed_id=check_distributed_id(distributed_id), show_progress=progress,
            )  # fmt: skip

    def finish_artifact(
        self,
        artifact: artifacts.Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] = (),
        *,
        distributed_id: str,
        progress: bool | None = None,
    ) -> ArtifactVersion:
        """Commit the version built under ``distributed_id`` from every process's part
        (and this artifact's own files, if any); every contributing run becomes one of its
        producers."""
        run = cast("Run", self)
        self._require_running("finish a distributed artifact")
        with collector_paused():  # as in `Run.log_artifact`
            chosen = artifacts.distributed_part(artifact, name, type)
            data = run.store.backend.finish_distributed(
                chosen, project=run.project, run_id=run.id,
                distributed_id=check_distributed_id(distributed_id),
                aliases=[aliases] if isinstance(aliases, str) else list(aliases),
                show_progress=progress,
            )  # fmt: skip
        chosen.logged = run.store.artifact(f"{data.project}/{data.name}:v{data.number}")
        return cast("ArtifactVersion", chosen.logged)


def check_distributed_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise InvalidInput(
            f"distributed_id must be a non-empty string of at most 256 characters (the same "
            f"in every process building the version), not {value!r}"
        )
    return value


def _refuse_store_inside(store: Store, root: Path) -> None:
    """A checkout removes what the version lacks: never the store's own files."""
    own = [config.local_path_of(store.objects_url), store.cache_dir]
    for kept in own:
        if kept is None:
            continue
        kept_path = Path(kept).absolute()
        if kept_path == root or root in kept_path.parents or kept_path in root.parents:
            raise InvalidPath(
                f"cannot check out into {str(root)!r}: it holds or is inside the store's own "
                f"files ({str(kept_path)!r}), which a checkout would remove; choose another "
                "folder"
            )


def check_prefix(version: ArtifactVersion, prefix: str) -> str:
    """A path prefix that some entry of the version starts with."""
    if not isinstance(prefix, str) or not prefix:
        raise NotFound(f"path_prefix must be a non-empty string, not {prefix!r}")
    if not any(path.startswith(prefix) for path in version.files()):
        raise NotFound(f"no file of {version.ref} starts with {prefix!r} (its files: see .files())")
    return prefix
