"""What a store does over its versions' lives: its status, restore deleted versions,
delete runs, retention policies and `prune`, `which` versions hold some bytes, `purge`
them, and the audit trail. `Store` inherits these; they call its backend like everything else."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import settings as config
from .errors import InvalidInput, InvalidPath
from .paths import check_name, parse_ref
from .records import AuditEvent, RetentionPolicy, VersionData
from .reports import DEFAULT_GRACE, GcReport, PruneReport, PurgeReport
from .urls import redact

if TYPE_CHECKING:
    from .backend import Backend
    from .views import ArtifactVersion

_DIGEST = re.compile(r"[0-9a-f]{32}")


class StoreLifecycle:
    """The lifecycle half of `Store` (which provides ``backend`` and the ref helpers)."""

    backend: Backend

    if TYPE_CHECKING:  # provided by Store

        def _default_project(self) -> str | None: ...

        def _version(self, data: VersionData) -> ArtifactVersion: ...

    def status(self) -> dict[str, Any]:
        """Which store this is and what it holds: how it was found, its catalog (password
        hidden) and object location, format, store id, counts, and the local cache."""
        backend = self.backend
        local = config.local_path_of(backend.objects_url)
        return {
            "path": str(local) if local is not None else backend.objects_url,
            "found_by": backend.source,
            "catalog": redact(backend.db_url),
            "objects": backend.objects_url,
            "format_version": backend.objects.format_version,
            "store_id": backend.store_id,
            "read_only": backend.read_only,
            **backend.counts(),
            "cache": backend.cache.usage().to_dict(),
        }

    def restore(self, ref: str) -> ArtifactVersion:
        """Undo the deletion of a version (``name:v3``), until gc purges it; ``latest``
        moves back to it if it is the newest."""
        found = self.backend.find_version(parse_ref(ref), self._default_project())
        return self._version(self.backend.restore_version(found))

    def delete_run(self, run_id: str, delete_outputs: bool = False) -> list[str]:
        """Mark a run deleted: hidden from `runs()`, kept in lineage as a node marked
        deleted (its edges are never lost). With ``delete_outputs`` its outputs are
        soft-deleted too (their user aliases removed); returns their refs."""
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput(f"a run id is 8 letters and digits, not {run_id!r}")
        return self.backend.delete_run(run_id, delete_outputs=delete_outputs)

    def set_retention(
        self,
        name: str,
        *,
        keep_last: int | None = None,
        max_age: dt.timedelta | None = None,
        keep_aliased: bool = True,
        project: str | None = None,
    ) -> RetentionPolicy | None:
        """How many versions of an artifact `prune` keeps: the newest ``keep_last``, none
        older than ``max_age`` (its newest version always stays), and every version a user
        alias points at unless ``keep_aliased=False``. Neither limit clears the policy."""
        if keep_last is not None and (
            isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1
        ):
            raise InvalidInput(f"keep_last must be a whole number of at least 1, not {keep_last!r}")
        if max_age is not None and (
            not isinstance(max_age, dt.timedelta) or max_age <= dt.timedelta(0)
        ):
            raise InvalidInput(f"max_age must be a positive datetime.timedelta, not {max_age!r}")
        ref = parse_ref(name if project is None else f"{check_name(project, 'project')}/{name}")
        if ref.selector != "latest" or ":" in name:
            raise InvalidInput(f"retention applies to an artifact: give its name, not {name!r}")
        return self.backend.set_retention(
            ref, self._default_project(),
            keep_last=keep_last, max_age=max_age, keep_aliased=bool(keep_aliased),
        )  # fmt: skip

    def retention(self) -> list[RetentionPolicy]:
        """Every artifact's retention policy."""
        return self.backend.retention_policies()

    def prune(self, dry_run: bool = False) -> PruneReport:
        """Soft-delete the versions whose TTL has passed (unless a user alias points at
        them) and those retention policies do not keep; gc purges their bytes after its
        grace period. With ``dry_run`` nothing changes: the report says what would go."""
        return self.backend.prune(dry_run=bool(dry_run))

    def gc(self, dry_run: bool = False, *, grace: dt.timedelta | None = None) -> GcReport:
        """Purge versions deleted more than ``grace`` ago (default 7 days; they can no
        longer be restored), then delete objects no other version references (leftovers of
        crashed or deleted work) once older than ``grace``; return a report of what was
        removed (iterating it yields the digests), or would be with ``dry_run``.

        Objects a live writer holds under its lease are kept, and the collection holds the
        catalog's write lock, so no writer can start relying on an object while it is being
        judged garbage.
        """
        chosen = DEFAULT_GRACE if grace is None else grace
        if not isinstance(chosen, dt.timedelta) or chosen < dt.timedelta(0):
            raise InvalidInput(f"grace must be a timedelta of 0 or more, not {grace!r}")
        return self.backend.gc(dry_run=dry_run, grace=chosen)

    def upgrade(self) -> int:
        """Move the store to the newest storage format (3: small files and chunks are
        stored in packs from now on); the format it is in now. Objects already stored stay
        where they are and keep being read; forebear versions older than the format refuse
        the store from then on. Run it where nothing else is writing."""
        return self.backend.upgrade()[1]

    def rebuild_index(self) -> tuple[int, int]:
        """Rebuild the catalog's index of packed objects from the index copy stored
        beside each pack (after a catalog was restored from a backup, say):
        ``(packs, objects)`` indexed."""
        return self.backend.rebuild_index()

    def which(self, path_or_digest: str | os.PathLike[str]) -> list[tuple[ArtifactVersion, str]]:
        """Every version (live or deleted, until gc purges it) holding a file's bytes,
        with the entry path it holds them under: ``[(version, path)]``, oldest first."""
        digest = self._digest_of(path_or_digest)
        return [(self._version(data), path) for data, path in self.backend.which(digest)]

    def purge(self, path_or_digest: str | os.PathLike[str], *, reason: str) -> PurgeReport:
        """Remove a file's bytes from the object location and every local cache now. The
        versions that held them stay, listed as redacted: their other files stay readable,
        and reading this one raises `IntegrityError` naming the purge. The reason is kept
        in the audit trail."""
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("a purge needs a reason, e.g. reason='GDPR request 42'")
        return self.backend.purge(self._digest_of(path_or_digest), reason)

    def audit(self, ref: str | None = None, since: dt.datetime | None = None) -> list[AuditEvent]:
        """Every change to the catalog, oldest first: of one version (``name:v1``), of
        one artifact and its versions (``name``), or all; ``since`` an aware datetime."""
        if since is not None and (not isinstance(since, dt.datetime) or since.tzinfo is None):
            raise InvalidInput(
                f"since must be a timezone-aware datetime, not {since!r} (e.g. "
                "datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1))"
            )
        if ref is None:
            return self.backend.audit(None, None, since)
        parsed = parse_ref(ref)
        whole = ":" not in ref
        return self.backend.audit(parsed, self._default_project(), since, whole_artifact=whole)

    @staticmethod
    def _digest_of(path_or_digest: str | os.PathLike[str]) -> str:
        text = os.fspath(path_or_digest)
        path = Path(text)
        if path.is_file():
            from .hashing import hash_file

            return hash_file(path)[0]
        if isinstance(path_or_digest, str) and _DIGEST.fullmatch(text):
            return text
        if path.exists():
            raise InvalidPath(f"{text!r} is not a file: give a file or a 32-hex digest")
        raise InvalidPath(f"{text!r} is neither a file nor a 32-hex digest")
