"""Plain records that cross the backend interface: what a catalog knows about versions,
runs and lineage, detached from any database session (named tuples: cheap to build by the
hundred thousand, and easy to send over HTTP)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NamedTuple

from .chunking import Chunking


class VersionData(NamedTuple):
    """One version as the catalog records it."""

    id: int
    artifact_id: int
    project: str
    name: str
    number: int
    type: str
    digest: str
    hash_algorithm: str
    size: int
    file_count: int
    description: str | None
    metadata_json: str  # decoded on access: bulk loads of many versions skip the cost
    created_at: dt.datetime
    created_by: str | None
    chunking_json: str | None
    new_bytes: int | None
    shared_bytes: int | None

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(json.loads(self.metadata_json)) if self.metadata_json else {}

    @property
    def chunking(self) -> Chunking | None:
        found = json.loads(self.chunking_json) if self.chunking_json else None
        return Chunking.from_dict(found) if found else None

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.number}"


class RunData(NamedTuple):
    """One run as the catalog records it; ``status`` as read (a running run whose
    process is gone reads as ``crashed``)."""

    id: str
    project: str
    name: str
    status: str
    config: dict[str, Any]
    summary: dict[str, Any]
    context: dict[str, Any]
    started_at: dt.datetime
    ended_at: dt.datetime | None


class RunSummary(NamedTuple):
    """What a lineage graph shows of a run."""

    pk: int
    id: str
    name: str
    status: str
    started_at: dt.datetime
    project: str


class LineageData(NamedTuple):
    """The runs and versions around one version, and the edges between them: ``(run key,
    direction, version id)``, ``out`` for a run that logged a version, ``in`` for one
    that used it."""

    root: int
    versions: dict[int, VersionData]
    aliases: dict[int, list[str]]
    runs: dict[int, RunSummary]
    edges: set[tuple[int, str, int]]
