"""Bringing an MLflow tracking store into forebear (``forebear import mlflow``).

Experiments become projects; runs become runs with their params (``config``), metrics
(``history`` at every step, the last values in ``summary``), tags, status and times;
each run's top-level artifacts (and MLflow 3 logged models) become versions it logged; and
every registered model version becomes a link in ``registry/<model>``, carrying its
aliases. MLflow is read through its own client, so any tracking URI MLflow accepts works.

A run keeps its MLflow run id unless a run of the store has it. Importing again changes
nothing: an imported run remembers its MLflow run id, imported versions their MLflow
origin in ``metadata["mlflow"]``, and a link of content linked already is the existing
registry version. Runs still running in MLflow are left for a later import; a run whose
import was interrupted is replaced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import tempfile
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .context import never_record, redact_secrets
from .errors import ArtifactNotFound, ForebearError, InvalidInput, NotFound, PermissionDenied
from .paths import REGISTRY, is_name
from .runs import init, own_or_new_run_id
from .store import Store
from .urls import redact, url_password
from .views import ArtifactVersion, Run

SOURCE = "mlflow"
STATUSES = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed"}
IN_PROGRESS = {"RUNNING", "SCHEDULED"}
STAGE_ALIASES = {"Staging": "staging", "Production": "production"}
PAGE = 1000
_ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
IMPORTED = "imported from MLflow"


@dataclass
class MlflowImport:
    """What an import did; ``notes`` name what was left out, and why."""

    projects: list[str] = field(default_factory=list)
    runs: int = 0
    runs_known: int = 0
    runs_running: int = 0
    versions: set[str] = field(default_factory=set)
    links: int = 0
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [
            f"{self.runs} run(s) imported into {len(self.projects)} project(s)"
            + (f" ({', '.join(self.projects)})" if self.projects else ""),
            f"{len(self.versions)} version(s) logged",
            f"{self.links} registry link(s)",
        ]
        if self.runs_known:
            parts.append(f"{self.runs_known} run(s) imported before, left as they are")
        if self.runs_running:
            parts.append(f"{self.runs_running} still running in MLflow, left for a later import")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "projects": self.projects,
            "runs": self.runs,
            "runs_known": self.runs_known,
            "runs_running": self.runs_running,
            "versions": sorted(self.versions),
            "links": self.links,
            "notes": self.notes,
        }


def import_mlflow(
    tracking_uri: str,
    *,
    store: Store | None = None,
    registry_uri: str | None = None,
    experiments: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> MlflowImport:
    """Import the MLflow tracking store at ``tracking_uri`` (its model registry at
    ``registry_uri``, default the same) into ``store`` (default: the store `forebear.open`
    finds): every active experiment, or only those named in ``experiments``. Returns
    what was imported; ``progress`` is told each run's name as it starts."""
    if isinstance(experiments, str):
        experiments = [experiments]
    target = store if store is not None else Store()
    target.backend.require_writable()
    with _mlflow_errors(tracking_uri), _file_stores_readable():
        client, artifacts = _client(tracking_uri, registry_uri)
        importer = _Importer(target, client, artifacts, tracking_uri, progress or (lambda _: None))
        importer.run(None if experiments is None else set(experiments))
    return importer.report


@contextlib.contextmanager
def _file_stores_readable() -> Iterator[None]:
    """Let MLflow open a file store (``./mlruns``, what MLflow 2 logged to) while the
    import reads it: MLflow 3 refuses to open one unless ``MLFLOW_ALLOW_FILE_STORE`` is
    set, a guard meant for writers that would stop an import of older history."""
    if os.environ.get(_ALLOW_FILE_STORE) is not None:
        yield
        return
    os.environ[_ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        os.environ.pop(_ALLOW_FILE_STORE, None)


def _datasets(mlflow_run: Any) -> list[dict[str, Any]]:
    """What ``mlflow.log_input`` recorded of the run's datasets: each one's name, digest,
    source (MLflow keeps no bytes of them, so no version can hold them) and the context it
    was used in (``training``)."""
    inputs = getattr(getattr(mlflow_run, "inputs", None), "dataset_inputs", None) or []
    found = []
    for used in inputs:
        dataset = used.dataset
        tags = {tag.key: tag.value for tag in used.tags or ()}
        found.append({
            "name": dataset.name, "digest": dataset.digest, "source_type": dataset.source_type,
            "source": dataset.source, "context": tags.get("mlflow.data.context"),
        })  # fmt: skip
    return found


def project_name(experiment: str) -> str:
    """A forebear project name for an MLflow experiment name: accents dropped (``Ü`` is
    ``U``), then characters a name may not hold become ``-``."""
    folded = unicodedata.normalize("NFKD", experiment).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folded).strip("-._")[:128]
    return name if is_name(name) else "mlflow"


class _Importer:
    def __init__(
        self,
        store: Store,
        client: Any,
        artifacts: Any,
        tracking_uri: str,
        progress: Callable[[str], None],
    ) -> None:
        self.store = store
        self.client = client
        self.artifacts = artifacts
        self.tracking_uri = tracking_uri
        self.progress = progress
        self.report = MlflowImport()
        self.known = self._imported_runs()
        self.logged_models: dict[str, list[Any]] = {}
        self.fallback_run: Run | None = None
        self.run_names: dict[str, str] = {}  # nested runs' parents: MLflow run id -> name

    def run(self, chosen: set[str] | None) -> None:
        experiments = [
            experiment
            for experiment in _pages(
                lambda token: self.client.search_experiments(max_results=PAGE, page_token=token)
            )
            if chosen is None or experiment.name in chosen
        ]
        experiments.sort(key=lambda e: (getattr(e, "creation_time", None) or 0, e.experiment_id))
        missing = sorted((chosen or set()) - {e.name for e in experiments})
        if missing:
            raise InvalidInput(
                f"no active MLflow experiment named {', '.join(map(repr, missing))} at "
                f"{redact(self.tracking_uri)}: check the names ('mlflow experiments "
                "search' lists them); nothing was imported"
            )
        seen: dict[str, str] = {}
        for experiment in experiments:
            project = project_name(experiment.name)
            if seen.get(project, experiment.experiment_id) != experiment.experiment_id:
                project = f"{project[:100]}-{experiment.experiment_id}"
            seen[project] = experiment.experiment_id
            self._experiment(experiment, project)
        self._registry(chosen)
        if self.fallback_run is not None:
            self.fallback_run.finish()

    # -- experiments and runs -------------------------------------------------------------

    def _experiment(self, experiment: Any, project: str) -> None:
        self.logged_models = {}
        if hasattr(self.client, "search_logged_models"):  # MLflow 3
            for model in _pages(
                lambda token: self.client.search_logged_models(
                    experiment_ids=[experiment.experiment_id], max_results=PAGE, page_token=token
                )
            ):
                self.logged_models.setdefault(model.source_run_id, []).append(model)
        runs = _pages(
            lambda token: self.client.search_runs(
                [experiment.experiment_id],
                order_by=["attributes.start_time ASC"],
                max_results=PAGE,
                page_token=token,
            )
        )
        for mlflow_run in runs:
            self._run(mlflow_run, experiment, project)

    def _run(self, mlflow_run: Any, experiment: Any, project: str) -> None:
        info = mlflow_run.info
        if info.status in IN_PROGRESS:
            self.report.runs_running += 1
            return
        earlier = self.known.get(info.run_id)
        if earlier is not None and earlier.status != "crashed":
            self.report.runs_known += 1
            if earlier.status == "running":
                self.report.notes.append(
                    f"run {info.run_id} is being imported by another process right now"
                )
            return
        if earlier is not None:  # an import of it was interrupted: do it again, whole
            self.store.delete_run(earlier.id)
        name = (info.run_name or info.run_id)[:256]
        self.progress(f"{experiment.name} / {name}")
        data = self.store.backend.create_run(
            own_or_new_run_id(self.store, info.run_id),
            project,
            name,
            {key: str(value) for key, value in mlflow_run.data.params.items()},
            self._context(mlflow_run, experiment),
            started_at=_moment(info.start_time),
        )
        run = Run(self.store, data, live=True)
        try:
            self._metrics(run, mlflow_run)
            self._artifacts(run, info.run_id)
        except BaseException:
            run.finish("crashed")
            raise
        run.finish(STATUSES.get(info.status, "failed"))
        if info.end_time:
            self.store.backend.update_run(run.id, ended_at=_moment(info.end_time))
        self.known[info.run_id] = run
        self.report.runs += 1
        if project not in self.report.projects:
            self.report.projects.append(project)

    def _context(self, mlflow_run: Any, experiment: Any) -> dict[str, Any]:
        tags = dict(mlflow_run.data.tags)
        context: dict[str, Any] = {
            "imported_from": {
                "tool": SOURCE,
                "run_id": mlflow_run.info.run_id,
                "experiment_id": experiment.experiment_id,
                "experiment": experiment.name,
            },
            "tags": tags,
        }
        if tags.get("mlflow.source.git.commit"):
            context["git"] = {"commit": tags["mlflow.source.git.commit"], "dirty": False}
        if tags.get("mlflow.source.name"):
            context["argv"] = [tags["mlflow.source.name"]]
        if tags.get("mlflow.user"):
            context["user"] = tags["mlflow.user"]
        parent = tags.get("mlflow.parentRunId")
        if parent:  # a nested run (a trial of a search): W&B's group is its parent
            context["group"] = self._run_name(parent)
        datasets = _datasets(mlflow_run)
        if datasets:
            context["datasets"] = datasets
        return context

    def _run_name(self, run_id: str) -> str:
        """An MLflow run's name (its id when MLflow no longer has it), asked once."""
        if run_id not in self.run_names:
            try:
                name = self.client.get_run(run_id).info.run_name
            except Exception:  # noqa: BLE001 - any MLflow error: a deleted parent
                name = None
            self.run_names[run_id] = str(name or run_id)[:256]
        return self.run_names[run_id]

    def _metrics(self, run: Run, mlflow_run: Any) -> None:
        steps: dict[int, dict[str, float]] = {}
        dropped = 0
        for key in sorted(mlflow_run.data.metrics):
            for point in self.client.get_metric_history(mlflow_run.info.run_id, key):
                if point.step < 0 or not math.isfinite(point.value):
                    dropped += 1
                    continue
                steps.setdefault(int(point.step), {})[key] = float(point.value)
        for step in sorted(steps):
            run.log(steps[step], step=step)
        last = {k: v for k, v in mlflow_run.data.metrics.items() if math.isfinite(v)}
        if last:  # the summary only: logged, they would make a history row of their own
            run.summary.update(last)
        if dropped:
            self.report.notes.append(
                f"run {mlflow_run.info.run_id}: {dropped} metric value(s) left out (a "
                "negative step, or not a finite number)"
            )

    def _artifacts(self, run: Run, run_id: str) -> None:
        for entry in self.client.list_artifacts(run_id):
            top = entry.path.rstrip("/").split("/")[-1]
            with tempfile.TemporaryDirectory(prefix="forebear-mlflow-") as scratch:
                local = self.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=entry.path,
                    dst_path=scratch,
                    tracking_uri=self.tracking_uri,
                )
                self._log(run, local, top, {"run_id": run_id, "path": entry.path})
        for model in self.logged_models.get(run_id, []):
            status = getattr(model.status, "value", model.status)  # MLflow's LoggedModelStatus
            if status in ("PENDING", "FAILED"):  # its files were never all written
                self.report.notes.append(
                    f"run {run_id}: model {model.name!r} ({model.model_id}) was never "
                    f"completely logged in MLflow (its status is {status}); left out"
                )
                continue
            with tempfile.TemporaryDirectory(prefix="forebear-mlflow-") as scratch:
                local = self.artifacts.download_artifacts(
                    artifact_uri=model.artifact_location, dst_path=scratch
                )
                self._log(run, local, model.name, {"run_id": run_id, "model_id": model.model_id})

    def _log(
        self, run: Run, local: str, name: str, origin: dict[str, str]
    ) -> ArtifactVersion | None:
        """Log what MLflow holds at ``local`` as a version of ``name`` (None for an empty
        folder: nothing to version). An artifact keeps the type of its first version."""
        if os.path.isdir(local) and not any(files for _, _, files in os.walk(local)):
            self.report.notes.append(f"run {origin['run_id']}: {name!r} is empty; left out")
            return None
        artifact = project_name(name)
        try:
            kind = self.store.artifact(f"{run.project}/{artifact}").type
        except NotFound:
            kind = "model" if os.path.exists(os.path.join(local, "MLmodel")) else "artifact"
        version = run.log_artifact(local, name=artifact, type=kind, metadata={SOURCE: origin})
        self.report.versions.add(version.qualified_ref)
        return version

    def _imported_runs(self) -> dict[str, Run]:
        known: dict[str, Run] = {}
        for run in self.store.iter_runs():
            origin = run.context.get("imported_from")
            if isinstance(origin, dict) and origin.get("tool") == SOURCE:
                known[str(origin.get("run_id"))] = run
        return known

    # -- the model registry ---------------------------------------------------------------

    def _registry(self, chosen: set[str] | None) -> None:
        for model in _pages(
            lambda token: self.client.search_registered_models(max_results=PAGE, page_token=token)
        ):
            aliases: dict[str, list[str]] = {}
            for alias, number in (getattr(model, "aliases", None) or {}).items():
                aliases.setdefault(str(number), []).append(alias)
            about = {  # what MLflow says of the model as a whole
                "model_description": getattr(model, "description", None) or "",
                "model_tags": dict(getattr(model, "tags", None) or {}),
            }
            for model_version in sorted(
                self._model_versions(model.name), key=lambda v: int(v.version)
            ):
                named = [*aliases.get(str(model_version.version), []), *model_version.aliases]
                linked = self._link(model.name, model_version, named, chosen)
                if linked is not None:
                    _describe(linked, model.name, model_version, about)

    def _model_versions(self, model: str) -> Iterator[Any]:
        def fetch(token: str | None) -> Any:
            return self.client.search_model_versions(
                filter_string=_name_filter(model), max_results=PAGE, page_token=token
            )

        return _pages(fetch)

    def _link(
        self, model: str, model_version: Any, named: list[str], chosen: set[str] | None
    ) -> ArtifactVersion | None:
        """Link one registered model version into ``registry/<model>`` with its aliases
        (``named``, and its legacy stage); the link (None: its run was not imported)."""
        source = self._source(model, model_version, chosen)
        if source is None:
            return None
        aliases: list[str] = []
        for alias in [*named, STAGE_ALIASES.get(model_version.current_stage)]:
            if alias is None or alias in aliases:
                continue
            if is_name(alias) and not re.fullmatch(r"v[0-9]+", alias) and alias != "latest":
                aliases.append(alias)
            else:
                self.report.notes.append(
                    f"registered model {model!r} version {model_version.version}: alias "
                    f"{alias!r} is not a forebear alias name; left out"
                )
        collection = project_name(model)
        try:
            linked_before = {v.id for v in self.store.versions(collection, project=REGISTRY)}
        except ArtifactNotFound:
            linked_before = set()
        try:
            linked = source.link(f"{REGISTRY}/{collection}", aliases=aliases, reason=IMPORTED)
        except PermissionDenied as refused:  # a protected alias moves only by hand
            self.report.notes.append(f"registered model {model!r}: {refused}")
            linked = source.link(f"{REGISTRY}/{collection}", reason=IMPORTED)
        if linked.id not in linked_before:
            self.report.links += 1
        return linked

    def _source(
        self, model: str, model_version: Any, chosen: set[str] | None
    ) -> ArtifactVersion | None:
        """The forebear version holding a registered model version's files: the imported
        run's artifact or logged model it names, else one logged for it."""
        run = self.known.get(model_version.run_id or "")
        if run is None and chosen is not None:
            return None  # a run of an experiment not imported this time
        model_id = getattr(model_version, "model_id", None) or _logged_model(model_version.source)
        path = _run_path(model_version.source, model_version.run_id)
        if run is not None:
            for version in run.outputs:
                origin = version.metadata.get(SOURCE) or {}
                if (model_id and origin.get("model_id") == model_id) or (
                    path is not None and origin.get("path") == path
                ):
                    return version
        wanted = {"model": model, "version": str(model_version.version)}
        project = run.project if run is not None else None
        try:
            earlier = self.store.versions(project_name(model), project=project)
        except ArtifactNotFound:
            earlier = []
        for version in earlier:
            if version.metadata.get(SOURCE) == wanted:
                return version
        uri = self.client.get_model_version_download_uri(model, model_version.version)
        with tempfile.TemporaryDirectory(prefix="forebear-mlflow-") as scratch:
            local = self.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch)
            return self._log(self._fallback_run(project), local, model, wanted)

    def _fallback_run(self, project: str | None) -> Run:
        """The run that logs registered model files no imported run logged: one per
        project, named for the import."""
        if self.fallback_run is not None and (
            project is None or self.fallback_run.project == project
        ):
            return self.fallback_run
        if self.fallback_run is not None:
            self.fallback_run.finish()
        self.fallback_run = init(  # recorded whatever FOREBEAR_MODE says: it is no script's
            project, "import from MLflow", store=self.store, mode="online", config_defaults=False
        )
        return self.fallback_run


def _describe(
    linked: ArtifactVersion, model: str, model_version: Any, about: dict[str, Any]
) -> None:
    """Keep on a registry link what MLflow says of its model version: its description
    (unless the link has one already, so an edit made in forebear stays) and, under
    ``metadata["mlflow"]["registered"]``, the model's name, the version's number and
    tags, and the model's own tags and description (where a governance step, such as a
    ``validation_status`` tag, was recorded). Importing again changes nothing."""
    registered: dict[str, Any] = {"model": model, "version": str(model_version.version)}
    details = {"tags": dict(getattr(model_version, "tags", None) or {}), **about}
    registered.update({key: value for key, value in details.items() if value})
    origin = linked.metadata.get(SOURCE)
    if isinstance(origin, dict):
        origin["registered"] = registered
    else:
        linked.metadata[SOURCE] = {"registered": registered}
    description = getattr(model_version, "description", None)
    if description and not linked.description:
        linked.description = description
    linked.save()


def check_tracking_uri(tracking_uri: object) -> str:
    """``tracking_uri`` if it can name an MLflow store: not a path that does not exist
    (MLflow would make a new, empty store there, and import nothing). Without one, what
    MLflow logs to in this folder when told nothing: ``sqlite:///mlflow.db`` (MLflow 3),
    else ``./mlruns`` (MLflow 2), whichever is here."""
    if tracking_uri is None or (isinstance(tracking_uri, str) and not tracking_uri.strip()):
        if os.path.isfile("mlflow.db"):
            return "sqlite:///mlflow.db"
        if os.path.isdir("mlruns"):
            return "./mlruns"
        raise InvalidInput(
            "give the MLflow tracking URI: --tracking-uri URI (or MLFLOW_TRACKING_URI); "
            "neither mlflow.db nor mlruns/, where MLflow logs by default, is in this folder"
        )
    if not isinstance(tracking_uri, str):
        raise InvalidInput(f"the MLflow tracking URI must be a text, not {tracking_uri!r}")
    never_record(url_password(tracking_uri))
    _check_exists(tracking_uri)
    return tracking_uri


def _client(tracking_uri: str, registry_uri: str | None) -> tuple[Any, Any]:
    check_tracking_uri(tracking_uri)
    try:
        import mlflow.artifacts
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ForebearError(
            f"importing from MLflow reads through MLflow's own client, which is not "
            f"installed ({exc}): pip install 'forebear[mlflow]'"
        ) from exc
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
    return client, mlflow.artifacts


def _check_exists(tracking_uri: str) -> None:
    """MLflow makes a new, empty store at a path that does not exist; a mistyped path
    must not import nothing (and leave an empty database behind)."""
    path = None
    if tracking_uri.startswith("sqlite:///"):
        path = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
        path = "/" + path.lstrip("/") if tracking_uri.startswith("sqlite:////") else path
    elif tracking_uri.startswith("file:"):
        path = urllib.parse.unquote(urllib.parse.urlparse(tracking_uri).path)
    elif ":" not in tracking_uri and not tracking_uri.startswith("databricks"):
        path = tracking_uri
    if path is not None and not os.path.exists(path):
        raise InvalidInput(
            f"no MLflow tracking store at {tracking_uri!r}: {path!r} does not exist; check "
            "the path (MLflow 3 logs to sqlite:///mlflow.db unless told, MLflow 2 to ./mlruns)"
        )


@contextlib.contextmanager
def _mlflow_errors(tracking_uri: str) -> Iterator[None]:
    """MLflow's own failures (a store it cannot read, a server that is down) as one
    forebear error naming the tracking store."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, ForebearError) or type(exc).__module__.split(".")[0] not in (
            "mlflow", "requests", "sqlalchemy", "urllib3",
        ):  # fmt: skip
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForebearError(
            f"cannot read the MLflow tracking store at {redact(tracking_uri)}: "
            f"{redact_secrets(first)}; check --tracking-uri, and that MLflow itself can read it"
        ) from exc


def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    """Every item of a paged MLflow search, a page at a time."""
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _logged_model(source: str | None) -> str | None:
    """The MLflow 3 logged model a source URI names (``models:/m-...``), if any."""
    if source and source.startswith("models:/m-") and "/" not in source[len("models:/") :]:
        return source[len("models:/") :]
    return None


def _name_filter(name: str) -> str:
    quote = '"' if "'" in name else "'"
    return f"name={quote}{name}{quote}"


def _run_path(source: str, run_id: str | None) -> str | None:
    """The top-level artifact path a model version's source names in its run
    (``runs:/ID/model`` or ``.../ID/artifacts/model``), or None when it names a deeper
    path or something else."""
    if not run_id or not source:
        return None
    for marker in (f"runs:/{run_id}/", f"/{run_id}/artifacts/"):
        if marker in source:
            rest = source.split(marker, 1)[1].strip("/")
            return rest if rest and "/" not in rest else None
    return None


def _moment(milliseconds: int | None) -> dt.datetime | None:
    if not milliseconds:
        return None
    return dt.datetime.fromtimestamp(milliseconds / 1000, dt.timezone.utc)
