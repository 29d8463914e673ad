"""forebear: version datasets and model files, and remember where each came from.

Heavy libraries (SQLAlchemy, fsspec, networkx) load on first use, so importing forebear
and starting its CLI stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ArtifactNotFound,
    AuthenticationError,
    ForebearError,
    ForebearWarning,
    GraphvizNotFound,
    IntegrityError,
    InvalidInput,
    InvalidName,
    InvalidPath,
    InvalidRef,
    NotFound,
    ObjectNotFound,
    PermissionDenied,
    Problem,
    RenderError,
    RunNotFound,
    RunStateError,
    StoreError,
    StoreNotFound,
    StoreVersionError,
    VersionNotFound,
)

if TYPE_CHECKING:
    from .lineage import Lineage
    from .manifest import Diff, Manifest, ManifestEntry
    from .records import AuditEvent, Delivery, Webhook
    from .run import Api, Artifact, finish, init, log, log_artifact, use_artifact
    from .store import Store, open
    from .views import ArtifactVersion, Run

__version__ = "0.1.0"

_LAZY = {
    "Api": "run",
    "Artifact": "run",
    "ArtifactVersion": "views",
    "AuditEvent": "records",
    "Delivery": "records",
    "Diff": "manifest",
    "Lineage": "lineage",
    "Manifest": "manifest",
    "ManifestEntry": "manifest",
    "Run": "views",
    "Store": "store",
    "finish": "run",
    "init": "run",
    "log": "run",
    "log_artifact": "run",
    "open": "store",
    "use_artifact": "run",
    "Webhook": "records",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'forebear' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Api",
    "Artifact",
    "ArtifactNotFound",
    "ArtifactVersion",
    "AuditEvent",
    "AuthenticationError",
    "Delivery",
    "Diff",
    "ForebearError",
    "ForebearWarning",
    "GraphvizNotFound",
    "IntegrityError",
    "InvalidInput",
    "InvalidName",
    "InvalidPath",
    "InvalidRef",
    "Lineage",
    "Manifest",
    "ManifestEntry",
    "NotFound",
    "ObjectNotFound",
    "PermissionDenied",
    "Problem",
    "RenderError",
    "Run",
    "RunNotFound",
    "RunStateError",
    "Store",
    "StoreError",
    "StoreNotFound",
    "StoreVersionError",
    "VersionNotFound",
    "Webhook",
    "__version__",
    "finish",
    "init",
    "log",
    "log_artifact",
    "open",
    "use_artifact",
]
