"""`Api`, W&B's ``wandb.Api()``: a store read outside any run, under W&B's names, with
its `Project`, `ArtifactCollection` and `ArtifactType`."""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from .errors import InvalidInput, NotFound
from .history_rows import histories
from .records import INTEGER_LIMIT
from .run_attributes import User
from .runfilters import check_query, matches, ordered
from .store import Store, open
from .version_attributes import ArtifactCollection
from .views import ArtifactVersion, Run


class Api:
    """W&B's ``wandb.Api()``: a store read outside any run, under W&B's names. Names are
    forebear refs (``project/name:v3``, ``project/name:alias``); W&B's ``entity/`` has
    no counterpart (a store is the team's)."""

    def __init__(
        self,
        store: Store | str | os.PathLike[str] | dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        timeout: float | None = None,
        api_key: str | None = None,
    ) -> None:
        """The store given (a `Store`, a folder or URL), else the one found from here.
        W&B's ``overrides`` (also given first, as W&B takes it): ``project`` names the
        project of names without one and of `runs` without a path; ``timeout`` and
        ``api_key`` are accepted (a server's token comes from ``FOREBEAR_TOKEN``)."""
        del timeout, api_key
        if isinstance(store, dict):
            store, overrides = None, store
        self.store = store if isinstance(store, Store) else open(store)
        chosen = dict(overrides or {})
        self.default_project: str | None = chosen.get("project")
        self.default_entity: str | None = chosen.get("entity")

    def _named(self, name: str) -> str:
        """``name`` in the overriding project when it names none."""
        project = self.default_project
        return f"{project}/{name}" if project and "/" not in name else name

    def flush(self) -> None:
        """W&B's ``api.flush()``, which clears its cache of runs so a polling loop sees
        them change: every read here asks the store, so there is nothing to clear."""

    @property
    def viewer(self) -> User:
        """W&B's ``api.viewer``: who this store's audit trail names for changes made from
        here (``name@host`` on a store reached directly, the token's account on a
        server), as `Run.user` names who started a run."""
        return User(self.store.backend.actor)

    def artifact(self, name: str, type: str | None = None) -> ArtifactVersion:
        """The version ``name`` names; with ``type``, only if it has that type."""
        version = self.store.artifact(self._named(name))
        if type is not None and version.type != type:
            raise InvalidInput(f"{version.qualified_ref} has type {version.type!r}, not {type!r}")
        return version

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        """Whether ``name`` names a version (of ``type``, if given)."""
        try:
            version = self.store.artifact(self._named(name))
        except NotFound:
            return False
        return type is None or version.type == type

    def artifacts(self, type_name: str, name: str) -> list[ArtifactVersion]:
        """Every version of the artifact ``name`` (``project/name``) that has type
        ``type_name``, oldest first (W&B's ``artifact_versions``, too)."""
        return [v for v in self.store.versions(self._named(name)) if v.type == type_name]

    artifact_versions = artifacts

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection:
        """The artifact ``name`` (``project/name``, or a name in the default project) with
        all its versions, if it has type ``type_name``."""
        latest = self.store.artifact(self._named(name.split(":", 1)[0]))
        if latest.type != type_name:
            raise InvalidInput(
                f"{latest.project}/{latest.name} has type {latest.type!r}, not {type_name!r}"
            )
        return ArtifactCollection(self.store, latest)

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        """Whether the artifact ``name`` exists with type ``type``."""
        try:
            self.artifact_collection(type, name)
        except (NotFound, InvalidInput):
            return False
        return True

    def artifact_collections(self, project_name: str, type_name: str) -> list[ArtifactCollection]:
        """Every artifact of one project that has type ``type_name``, by name."""
        latest = self.store.artifacts(project_name, type_name)
        return [ArtifactCollection(self.store, version) for version in latest]

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType:
        """The artifacts of type ``type_name`` (in ``project``, or in every project)."""
        if not self.store.artifacts(project, type_name):
            where = f" in project {project!r}" if project is not None else ""
            raise NotFound(f"no artifact has type {type_name!r}{where}")
        return ArtifactType(self.store, type_name, project)

    def artifact_types(self, project: str | None = None) -> list[ArtifactType]:
        """Every type some artifact (of ``project``, or of any project) has, by name."""
        types = sorted({version.type for version in self.store.artifacts(project)})
        return [ArtifactType(self.store, name, project) for name in types]

    def projects(self, entity: str | None = None, per_page: int = 200) -> list[Project]:
        """Every project, by name (W&B's ``entity`` and ``per_page`` are accepted: a store
        is the team's, and the list is whole)."""
        del per_page
        return [Project(self.store, name, entity) for name in self.store.projects()]

    def project(self, name: str, entity: str | None = None) -> Project:
        """One project, by name (``entity/name`` as W&B writes it, or the name alone)."""
        name = name.rstrip("/").rsplit("/", 1)[-1]
        if name not in self.store.projects():
            raise NotFound(f"no project named {name!r} (api.projects() lists them)")
        return Project(self.store, name, entity)

    def run(self, path: str) -> Run:
        """One run, by its id (``project/id`` as W&B writes it, or the id alone)."""
        return self.store.run(path.rsplit("/", 1)[-1])

    def runs(
        self,
        path: str | None = None,
        filters: dict[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
        include_sweeps: bool = True,
        lazy: bool = True,
    ) -> Sequence[Run]:
        """The runs of one project (``project``, or W&B's ``entity/project``; every run
        without one) that pass ``filters``, W&B's MongoDB-style query (``{"state":
        "finished", "config.lr": {"$gt": 0.01}}``: see `forebear.runfilters`), sorted by
        ``order`` (``"+created_at"``, oldest first; ``"-summary_metrics.acc"``).
        Without filters, in order of creation, a `Runs` that reads them a page at a time
        as it is iterated (W&B's too); otherwise the list of those that pass.
        ``per_page``, ``include_sweeps`` and ``lazy`` are accepted."""
        del per_page, include_sweeps, lazy
        path = path or self.default_project
        project = path.rstrip("/").rsplit("/", 1)[-1] if path else None
        if path and path.strip("/").count("/") > 1:
            raise InvalidInput(f"a runs path is 'project' or 'entity/project', not {path!r}")
        if filters is not None:
            check_query(filters)
        elif isinstance(order, str) and order.lstrip("+-") in ("created_at", "createdAt"):
            return Runs(self.store, project, newest_first=order.startswith("-"))
        found: list[Run] = []
        documents: list[dict[str, Any]] = []
        for run in self.store.iter_runs(project):  # a page at a time: only matches are kept
            document = _document(run)
            if filters is None or matches(document, filters):
                found.append(run)
                documents.append(document)
        return RunList(ordered(found, documents, order))


class RunHistories:
    """W&B's ``Runs.histories`` on both kinds of run listing."""

    if TYPE_CHECKING:  # provided by each listing

        def __iter__(self) -> Iterator[Run]: ...

    def histories(
        self,
        samples: int | None = None,
        keys: Sequence[str] | None = None,
        x_axis: str = "_step",
        format: str = "default",
        stream: str = "default",
    ) -> Any:
        """Every run's history rows, each with ``run_id`` beside its step and values:
        a list of them, or with ``format="pandas"`` one DataFrame (``_step`` for the
        step, as `Run.history` gives it). ``samples`` and ``keys`` are `Run.history`'s,
        for each run (every row by default); ``x_axis`` and ``stream`` are accepted."""
        del x_axis, stream
        return histories(self, samples, keys, format)


class RunList(list[Run], RunHistories):
    """The runs a filtered or ordered `Api.runs` found."""


class Runs(Sequence[Run], RunHistories):
    """W&B's ``Runs``: the runs of a project (or of all), oldest or newest first, read from
    the store a page at a time as they are iterated, so a loop over a hundred thousand
    runs holds one page. ``len`` is counted by the catalog; an index or a slice reads just
    those runs. Each use reads the store as it is then."""

    def __init__(self, store: Store, project: str | None, *, newest_first: bool) -> None:
        self.store = store
        self.project = project
        self.newest_first = newest_first

    def __iter__(self) -> Iterator[Run]:
        return self.store.iter_runs(self.project, newest_first=self.newest_first)

    def __reversed__(self) -> Iterator[Run]:
        return self.store.iter_runs(self.project, newest_first=not self.newest_first)

    def __len__(self) -> int:
        return self.store.count_runs(self.project)

    @overload
    def __getitem__(self, index: int) -> Run: ...

    @overload
    def __getitem__(self, index: slice) -> list[Run]: ...

    def __getitem__(self, index: int | slice) -> Run | list[Run]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return list(self)[index]
            return list(self._read(start, max(0, stop - start)))
        position = operator.index(index)
        if position < 0:
            position += len(self)
        found = list(self._read(position, 1)) if 0 <= position < INTEGER_LIMIT else []
        if not found:
            raise IndexError(f"run index {index} is out of range")
        return found[0]

    def _read(self, start: int, count: int) -> Iterator[Run]:
        return self.store.iter_runs(
            self.project, newest_first=self.newest_first, start=start, limit=count
        )

    def __repr__(self) -> str:
        return f"<Runs {self.project or 'of every project'}>"


class Project:
    """W&B's ``Project``: a project's name (and the ``entity`` it was asked for by), its
    artifact types and runs."""

    def __init__(self, store: Store, name: str, entity: str | None = None) -> None:
        self.store = store
        self.name = name
        self.entity = entity
        self.id = name

    @property
    def path(self) -> list[str]:
        """W&B's ``[entity, project]``; the name alone without an entity."""
        return [self.entity, self.name] if self.entity else [self.name]

    def artifacts_types(self, per_page: int = 50) -> list[ArtifactType]:
        """The types of this project's artifacts, by name (W&B's spelling)."""
        del per_page
        return Api(self.store).artifact_types(self.name)

    def runs(self) -> Runs:
        """This project's runs, oldest first, read as they are used (see `Runs`)."""
        return Runs(self.store, self.name, newest_first=False)

    def __repr__(self) -> str:
        return f"<Project {self.name}>"


class ArtifactType:
    """W&B's ``ArtifactType``: the artifacts of one type (of one project, or all)."""

    def __init__(self, store: Store, name: str, project: str | None) -> None:
        self.store = store
        self.name = name
        self.project = project

    def collections(self) -> list[ArtifactCollection]:
        """The artifacts of this type, by project and name."""
        latest = self.store.artifacts(self.project, self.name)
        return [ArtifactCollection(self.store, version) for version in latest]

    def collection(self, name: str) -> ArtifactCollection:
        """The artifact ``name`` of this type."""
        return Api(self.store).artifact_collection(self.name, name)

    def __repr__(self) -> str:
        return f"<ArtifactType {self.name}>"


def _document(run: Run) -> dict[str, Any]:
    """A run as W&B's filters and orders name its fields."""
    created = run.started_at.isoformat()
    return {
        "id": run.id, "name": run.id, "display_name": run.name, "displayName": run.name,
        "state": run.status, "project": run.project, "config": dict(run.config),
        "summary_metrics": dict(run.summary), "tags": run.tags,
        "group": run.group, "job_type": run.job_type, "jobType": run.job_type,
        "created_at": created, "createdAt": created,
        "heartbeat_at": run.heartbeat_at,
    }  # fmt: skip
