"""The read-only web UI: Starlette routes over the public API, Jinja2 templates with
autoescaping, and a JSON API under ``/api/`` behind every page.

Nothing here writes to the store, and no route reads outside it: file downloads go through
`ArtifactVersion.open`, which only knows the version's own entries.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from ..errors import (
    ForebearError,
    IntegrityError,
    InvalidInput,
    NotFound,
    ObjectNotFound,
    PermissionDenied,
    StoreError,
)
from ..hashing import BLOCK_SIZE
from ..manifest import ManifestEntry
from ..pages import artifact_page, quoted, run_page, version_page
from ..paths import REGISTRY
from ..records import AuditEvent
from ..store import Store
from ..units import human_size
from ..views import ArtifactVersion, Run
from .charts import charts
from .media import inline_type, logged_media
from .security import Guard, host_names

HERE = Path(__file__).parent
PAGE_SIZE = 50  # versions and runs per page
AUDIT_SHOWN = 50  # newest events of an artifact on its page (all of them: /audit)
MOVES_SHOWN = 10  # newest alias moves of a collection on the registry page
ARTIFACTS_PAGE_SIZE = 200  # the home page links every artifact of all but the largest stores
FILES_PAGE_SIZE = 200


# the pages' paths (`forebear.pages`), under the names the templates use
_quote, version_url, artifact_url, run_url = quoted, version_page, artifact_page, run_page


def _page(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


def _bounded(page: int, total: int, size: int) -> tuple[int, int]:
    """The page asked for, kept within the pages ``total`` items fill (at least one), and
    how many pages there are."""
    pages = max(1, -(-total // size))
    return min(page, pages), pages


def _paginate(items: list[Any], page: int, size: int) -> dict[str, Any]:
    page, pages = _bounded(page, len(items), size)
    return {
        "items": items[(page - 1) * size : page * size],
        "page": page,
        "pages": pages,
        "total": len(items),
    }


def _version_json(version: ArtifactVersion) -> dict[str, Any]:
    return {**version.to_dict(), "url": version_url(version.project, version.name, version.version)}


def _event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "details": event.details,
    }


def _run_json(run: Run) -> dict[str, Any]:
    return {**run.to_dict(), "url": run_url(run.id)}


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """A stream's bytes a block at a time, the stream closed at the end."""
    with stream:
        while block := stream.read(BLOCK_SIZE):
            yield block


def pretty_json(value: Any, indent: int = 0) -> str:
    """``value`` as JSON indented by level, keys sorted, but a list of plain values on one
    line: a logged histogram's 64 counts or a list of tags read as one line each, not as
    a column of numbers."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        items = [
            f"{pad}  {json.dumps(key)}: {pretty_json(item, indent + 2)}"
            for key, item in sorted(value.items())
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        items = [f"{pad}  {pretty_json(item, indent + 2)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value)


def create_app(store: Store, allowed_hosts: Iterable[str] | None = None) -> ASGIApp:
    """The ASGI application for one store, answering requests for ``allowed_hosts`` (by
    default the loopback names; see `security.host_names`)."""
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    templates.globals.update(
        version_url=version_url, artifact_url=artifact_url, run_url=run_url, quote=_quote
    )
    templates.filters["size"] = human_size
    templates.filters["pretty"] = pretty_json

    def page(template: str, request: Request, **context: Any) -> HTMLResponse:
        body = templates.get_template(template).render(request=request, store=store, **context)
        return HTMLResponse(body)

    def find_version(request: Request) -> ArtifactVersion:
        """The version a page names; a deleted one too (shown as deleted), by number."""
        params = request.path_params
        ref = f"{params['project']}/{params['name']}:{params['version']}"
        try:
            return store.artifact(ref)
        except (NotFound, InvalidInput) as exc:
            try:
                every = store.versions(params["name"], params["project"], include_deleted=True)
            except (NotFound, InvalidInput):
                every = []
            for version in every:
                if version.deleted and version.version == params["version"]:
                    return version
            raise HTTPException(404, str(exc)) from exc

    # -- data behind the pages -----------------------------------------------------------

    def home_data(request: Request) -> dict[str, Any]:
        query = request.query_params
        text = query.get("q", "").strip().lower()
        type_ = query.get("type") or None
        alias = query.get("alias", "").strip()
        tag = query.get("tag", "").strip()
        project = query.get("project") or None
        every = store.artifacts(project=project, tags=[tag] if tag else ())
        types = sorted({v.type for v in every})
        projects = sorted({v.project for v in every})
        chosen = [
            v
            for v in every
            if (not text or text in v.name.lower())
            and (type_ is None or v.type == type_)
            and (not alias or alias in _all_aliases(store, v))
        ]
        listing = _paginate(chosen, _page(request), ARTIFACTS_PAGE_SIZE)
        return {
            "artifacts": listing["items"],
            "page": listing["page"],
            "pages": listing["pages"],
            "total": listing["total"],
            "types": types,
            "projects": projects,
            "filters": {
                "q": text,
                "type": type_ or "",
                "alias": alias,
                "tag": tag,
                "project": project or "",
            },
        }

    def artifact_data(request: Request) -> dict[str, Any]:
        params = request.path_params
        deleted = request.query_params.get("deleted") == "1"
        try:
            every = store.versions(params["name"], params["project"], include_deleted=True)
            history = store.alias_history(params["name"], project=params["project"])
            events = store.audit(f"{params['project']}/{params['name']}")
        except (NotFound, InvalidInput) as exc:
            raise HTTPException(404, str(exc)) from exc
        versions = [v for v in every if deleted or not v.deleted]
        listing = _paginate(list(reversed(versions)), _page(request), PAGE_SIZE)
        policy = [
            p
            for p in store.retention()
            if (p.project, p.name) == (params["project"], params["name"])
        ]
        return {
            "project": params["project"],
            "name": params["name"],
            "protected": store.protected_aliases(f"{params['project']}/{params['name']}"),
            "type": every[-1].type,
            "show_deleted": deleted,
            "deleted_count": sum(v.deleted for v in every),
            "retention": policy[0]._asdict() if policy else None,
            "audit": [_event_json(e) for e in reversed(events[-AUDIT_SHOWN:])],
            "versions": listing["items"],
            "page": listing["page"],
            "pages": listing["pages"],
            "total": listing["total"],
            "history": list(reversed(history)),
        }

    def version_data(request: Request) -> dict[str, Any]:
        version = find_version(request)
        pages = max(1, -(-version.file_count // FILES_PAGE_SIZE))
        number = min(_page(request), pages)
        listing = {
            "items": version.entries((number - 1) * FILES_PAGE_SIZE, FILES_PAGE_SIZE),
            "page": number,
            "pages": pages,
            "total": version.file_count,
        }
        others = [] if version.deleted else store.versions(version.name, project=version.project)
        against = request.query_params.get("diff")
        diff = None
        if against:
            try:
                other = store.artifact(f"{version.project}/{version.name}:{against}")
            except (NotFound, InvalidInput) as exc:
                raise HTTPException(404, str(exc)) from exc
            changes = other.diff(version)
            diff = {
                "against": other.version,
                "added": changes.added,
                "removed": changes.removed,
                "modified": changes.modified,
            }
        source = version.source
        return {
            "version": version,
            "source": source,
            "entries": listing["items"],
            "page": listing["page"],
            "pages": listing["pages"],
            "total": listing["total"],
            "producers": version.producers,
            "consumers": version.consumers,
            "others": [v.version for v in others if v.version != version.version],
            "diff": diff,
            "purged": {r.path: r._asdict() for r in version.redactions()},
            "audit": [_event_json(e) for e in store.audit(version.qualified_ref)],
        }

    def lineage_data(request: Request) -> dict[str, Any]:
        version = find_version(request)
        query = request.query_params
        up = query.get("up", "1") != "0"
        down = query.get("down", "0") == "1"
        depth_text = query.get("depth", "")
        depth = int(depth_text) if depth_text.isdigit() and len(depth_text) < 7 else None
        lineage = store.lineage(version, upstream=up, downstream=down, depth=depth)
        return {"version": version, "lineage": lineage, "up": up, "down": down, "depth": depth}

    def runs_data(request: Request) -> dict[str, Any]:
        project = request.query_params.get("project") or None
        deleted = request.query_params.get("deleted") == "1"
        total = store.count_runs(project, include_deleted=deleted)
        page, pages = _bounded(_page(request), total, PAGE_SIZE)
        found = store.iter_runs(
            project, include_deleted=deleted, newest_first=True,
            start=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )  # fmt: skip
        return {
            "show_deleted": deleted,
            "runs": list(found),
            "page": page,
            "pages": pages,
            "total": total,
        }

    def run_data(request: Request) -> dict[str, Any]:
        try:
            run = store.run(request.path_params["run_id"])
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        history = run.history()
        return {
            "run": run,
            "inputs": run.inputs,
            "outputs": run.outputs,
            "history": history,
            "charts": charts(history),
            "media": logged_media(run.summary),
        }

    def registry_data(request: Request) -> dict[str, Any]:
        """Each collection: what every alias points at now (and the source it links), where
        it pointed before, which aliases are protected, and the latest moves."""
        collections = []
        for latest in store.artifacts(project=REGISTRY):
            name = f"{REGISTRY}/{latest.name}"
            moves = [m for m in store.alias_history(name) if m["alias"] != "latest"]
            before = {m["alias"]: m["previous"] for m in moves if m["version"] is not None}
            aliases: list[dict[str, Any]] = []
            for version in store.versions(name):
                source = version.source
                for alias in version.aliases:
                    if alias == "latest":
                        continue
                    aliases.append(
                        {
                            "alias": alias,
                            "version": version.version,
                            "source": source.qualified_ref if source else None,
                            "source_url": version_url(source.project, source.name, source.version)
                            if source
                            else None,
                            "before": before.get(alias),
                        }
                    )
            collections.append(
                {
                    "name": latest.name,
                    "type": latest.type,
                    "latest": latest.version,
                    "versions": int(latest.version[1:]) + 1,
                    "protected": store.protected_aliases(name),
                    "aliases": sorted(aliases, key=lambda a: str(a["alias"])),
                    "moves": list(reversed(moves[-MOVES_SHOWN:])),
                }
            )
        return {"collections": collections}

    def audit_data(request: Request) -> dict[str, Any]:
        events = list(reversed(store.audit()))  # newest first on the page
        listing = _paginate(events, _page(request), PAGE_SIZE)
        return {
            "events": [_event_json(e) for e in listing["items"]],
            "page": listing["page"],
            "pages": listing["pages"],
            "total": listing["total"],
        }

    # -- HTML pages ------------------------------------------------------------------------

    def html(
        template: str, build: Callable[[Request], dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page: the same data as its JSON twin, rendered through a template."""

        async def endpoint(request: Request) -> Response:
            return page(template, request, **build(request))

        return endpoint

    async def lineage(request: Request) -> Response:
        data = lineage_data(request)

        def link(node: str, attributes: dict[str, Any]) -> str | None:
            if attributes["kind"] == "version":
                return version_url(attributes["project"], attributes["name"], attributes["version"])
            if attributes["kind"] == "run":
                return run_url(attributes["id"])
            return None

        try:
            svg = data["lineage"].to_svg(link)
        except ForebearError as exc:  # no Graphviz: show the tree instead
            svg = None
            data["problem"] = str(exc)
        svg_body = svg[svg.index("<svg") :] if svg else None
        return page("lineage.html", request, svg=svg_body, **data)

    async def file(request: Request) -> Response:
        """A file of a version, to download."""
        entry, stream = readable(request)
        filename = entry.path.rsplit("/", 1)[-1]
        disposition = f"attachment; filename*=UTF-8''{_quote(filename)}"
        return StreamingResponse(
            _blocks(stream),
            media_type="application/octet-stream",
            headers={"Content-Disposition": disposition, "Content-Length": str(entry.size)},
        )

    async def view(request: Request) -> Response:
        """A picture, sound or video of a version, shown in the page that links it (see
        `web.media`); any other file is only downloaded."""
        if inline_type(request.path_params["path"]) is None:
            raise HTTPException(404, "only pictures, sound and video are shown here")
        entry, stream = readable(request)
        media_type = inline_type(entry.path)  # the file's own name decides, as written
        if media_type is None:
            stream.close()
            raise HTTPException(404, "only pictures, sound and video are shown here")
        return StreamingResponse(
            _blocks(stream),
            media_type=media_type,
            headers={"Content-Disposition": "inline", "Content-Length": str(entry.size)},
        )

    def readable(request: Request) -> tuple[ManifestEntry, BinaryIO]:
        """The entry a file route names and a stream of its bytes, each checked before
        the first is read."""
        version = find_version(request)
        path = request.path_params["path"]
        if version.deleted:
            raise HTTPException(410, f"{version.ref} is deleted; restore it to read its files")
        try:
            entry = version.entry(path)
        except (NotFound, InvalidInput) as exc:
            raise HTTPException(404, str(exc)) from exc
        for redaction in version.redactions():
            if redaction.path == entry.path:
                raise HTTPException(410, redaction.message(version.ref))
        # open() checks every byte before the first is handed over: a corrupted object is
        # refused here, never half-sent as good
        return entry, version.open(path)

    # -- JSON API ------------------------------------------------------------------------

    def api(
        build: Callable[[Request], dict[str, Any]], shape: Callable[[dict[str, Any]], Any]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return JSONResponse(shape(build(request)))

        return endpoint

    def shape_home(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "artifacts": [_version_json(v) for v in data["artifacts"]]}

    def shape_artifact(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "versions": [_version_json(v) for v in data["versions"]]}

    def shape_version(data: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": _version_json(data["version"]),
            "source": data["source"].qualified_ref if data["source"] else None,
            "entries": [e.to_dict() for e in data["entries"]],
            "page": data["page"],
            "pages": data["pages"],
            "total": data["total"],
            "producers": [_run_json(r) for r in data["producers"]],
            "consumers": [_run_json(r) for r in data["consumers"]],
            "diff": data["diff"],
            "purged": {
                path: {**r, "purged_at": r["purged_at"].isoformat()}
                for path, r in data["purged"].items()
            },
            "audit": data["audit"],
        }

    def shape_lineage(data: dict[str, Any]) -> Any:
        return json.loads(data["lineage"].to_json())

    def shape_runs(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "runs": [_run_json(r) for r in data["runs"]]}

    def shape_run(data: dict[str, Any]) -> dict[str, Any]:
        return {
            **_run_json(data["run"]),
            "history": data["history"],
            "inputs": [_version_json(v) for v in data["inputs"]],
            "outputs": [_version_json(v) for v in data["outputs"]],
            "media": data["media"],
        }

    async def forebear_error(request: Request, exc: Exception) -> Response:
        """What went wrong, as a page (or JSON) with what to do: never a traceback."""
        status = 500
        detail = str(exc)
        if isinstance(exc, ObjectNotFound):
            status = 404
            detail = f"{exc} (run 'forebear verify' to find every missing object)"
        elif isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, InvalidInput):
            status = 400
        elif isinstance(exc, PermissionDenied):  # through a server: not this account's
            status = 403
        elif isinstance(exc, IntegrityError):
            detail = f"{exc} (run 'forebear verify' to find every damaged object)"
        elif isinstance(exc, StoreError):
            status = 503
        return await not_found(request, HTTPException(status, detail))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "not found")
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=status)
        body = templates.get_template("error.html").render(
            request=request, store=store, status=status, detail=detail
        )
        return HTMLResponse(body, status_code=status)

    version_path = "/artifacts/{project}/{name}/{version}"
    routes = [
        Route("/", html("home.html", home_data)),
        Route("/artifacts/{project}/{name}", html("artifact.html", artifact_data)),
        Route(version_path, html("version.html", version_data)),
        Route(version_path + "/lineage", lineage),
        Route(version_path + "/files/{path:path}", file),
        Route(version_path + "/view/{path:path}", view),
        Route("/runs", html("runs.html", runs_data)),
        Route("/runs/{run_id}", html("run.html", run_data)),
        Route("/audit", html("audit.html", audit_data)),
        Route("/registry", html("registry.html", registry_data)),
        Route("/api/registry", api(registry_data, lambda data: data)),
        Route("/api/artifacts", api(home_data, shape_home)),
        Route("/api/artifacts/{project}/{name}", api(artifact_data, shape_artifact)),
        Route("/api" + version_path, api(version_data, shape_version)),
        Route("/api" + version_path + "/lineage", api(lineage_data, shape_lineage)),
        Route("/api/runs", api(runs_data, shape_runs)),
        Route("/api/runs/{run_id}", api(run_data, shape_run)),
        Route("/api/audit", api(audit_data, lambda data: data)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, ForebearError: forebear_error},
    )
    allowed = host_names("127.0.0.1") if allowed_hosts is None else set(allowed_hosts)
    return Guard(app, allowed)


def _all_aliases(store: Store, latest: ArtifactVersion) -> set[str]:
    return {a for v in store.versions(latest.name, project=latest.project) for a in v.aliases}


def check_address(host: str, port: int) -> None:
    """A clear error, before anything starts, when the address cannot be listened on."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise InvalidInput(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port"
        ) from exc


def serve(
    store: Store, host: str = "127.0.0.1", port: int = 8765, allowed_hosts: Iterable[str] = ()
) -> None:
    """Serve the UI until interrupted (read-only; loopback unless told otherwise), to
    requests addressed to ``host`` (and its usual names) or one of ``allowed_hosts``."""
    import uvicorn

    check_address(host, port)
    app = create_app(store, host_names(host, allowed_hosts))
    uvicorn.run(app, host=host, port=port, log_level="warning")
