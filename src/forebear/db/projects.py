"""Projects and artifacts in the catalog: found, made on first use, and resolved from refs."""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import (
    ArtifactNotFound,
    InvalidInput,
    PermissionDenied,
)
from ..paths import REGISTRY, Ref
from .bulk import insert_ignoring_duplicates
from .schema import (
    ArtifactRow,
    ProjectRow,
    utcnow,
)

# The projects a ref without one may resolve to, when a server acts for a user who may read
# only some (None: every project).
VISIBLE: ContextVar[frozenset[str] | None] = ContextVar("forebear_visible", default=None)


def get_or_create_project(session: Session, name: str) -> ProjectRow:
    insert_ignoring_duplicates(session, ProjectRow, [{"name": name, "created_at": utcnow()}])
    return session.execute(select(ProjectRow).where(ProjectRow.name == name)).scalar_one()


def find_project(session: Session, name: str) -> ProjectRow | None:
    return session.execute(select(ProjectRow).where(ProjectRow.name == name)).scalar_one_or_none()


def project_names(session: Session) -> list[str]:
    """Every project's name (one made by a run or an artifact), by name."""
    return list(session.execute(select(ProjectRow.name).order_by(ProjectRow.name)).scalars())


def project_name(session: Session, project_id: int) -> str:
    return session.execute(select(ProjectRow.name).where(ProjectRow.id == project_id)).scalar_one()


def get_or_create_artifact(
    session: Session, project: ProjectRow, name: str, type_: str
) -> ArtifactRow:
    insert_ignoring_duplicates(
        session,
        ArtifactRow,
        [
            {
                "project_id": project.id,
                "name": name,
                "type": type_,
                "next_number": 0,
                "created_at": utcnow(),
            }
        ],
    )
    artifact = session.execute(
        select(ArtifactRow)
        .where(ArtifactRow.project_id == project.id, ArtifactRow.name == name)
        .with_for_update()  # serialises writers of one artifact on PostgreSQL
    ).scalar_one()
    if artifact.type != type_:
        raise InvalidInput(
            f"artifact '{project.name}/{name}' has type {artifact.type!r}, not {type_!r}; "
            "log it with the same type or choose another name"
        )
    return artifact


def find_artifact(session: Session, project_id: int, name: str) -> ArtifactRow | None:
    return session.execute(
        select(ArtifactRow).where(ArtifactRow.project_id == project_id, ArtifactRow.name == name)
    ).scalar_one_or_none()


def get_artifact(session: Session, ref: Ref, default_project: str | None) -> ArtifactRow:
    """Resolve the artifact of ``ref``: an explicit project, else ``default_project`` if it
    has the name, else the only project that has it."""
    if ref.project is not None:
        project = find_project(session, ref.project)
        artifact = find_artifact(session, project.id, ref.name) if project else None
        if artifact is None:
            raise ArtifactNotFound(
                f"no artifact {ref.name!r} in project {ref.project!r} "
                "(run 'forebear ls' to see what exists)"
            )
        return artifact
    candidates = list(
        session.execute(
            select(ArtifactRow, ProjectRow.name)
            .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
            .where(ArtifactRow.name == ref.name)
            .order_by(ProjectRow.name)
        ).all()
    )
    visible = VISIBLE.get()
    if visible is not None:
        hidden = bool(candidates)
        candidates = [c for c in candidates if c[1] in visible]
        if hidden and not candidates:
            raise PermissionDenied(
                f"artifact {ref.name!r} is only in projects you may not read; ask an admin "
                "for the reader role there"
            )
    if default_project is not None:
        for artifact, project_name in candidates:
            if project_name == default_project:
                return artifact
    if len(candidates) > 1:  # a collection shares its model's name: the model is meant
        candidates = [c for c in candidates if c[1] != REGISTRY] or candidates
    if len(candidates) == 1:
        return candidates[0][0]
    if not candidates:
        raise ArtifactNotFound(
            f"no artifact named {ref.name!r} (run 'forebear ls' to see what exists)"
        )
    names = ", ".join(f"'{p}/{ref.name}'" for _, p in candidates)
    raise ArtifactNotFound(
        f"artifact {ref.name!r} exists in several projects; name one of: {names}"
    )


def list_artifacts(
    session: Session, project: str | None = None, type_: str | None = None
) -> list[tuple[ArtifactRow, str]]:
    query = (
        select(ArtifactRow, ProjectRow.name)
        .join(ProjectRow, ProjectRow.id == ArtifactRow.project_id)
        .order_by(ProjectRow.name, ArtifactRow.name)
    )
    if project is not None:
        query = query.where(ProjectRow.name == project)
    if type_ is not None:
        query = query.where(ArtifactRow.type == type_)
    return [(a, p) for a, p in session.execute(query)]
