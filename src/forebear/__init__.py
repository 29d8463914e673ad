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
    from .runs import Api, Artifact, finish, init, log, log_artifact, use_artifact
    from .store import Store, open
    from .views import ArtifactVersion, Run

    run: Run | None  # the active run (W&B's wandb.run), looked up on each use
    config: dict[str, Any]  # its config (W&B's wandb.config); {} with no run

__version__ = "0.1.0"

_LAZY = {
    "Api": "runs",
    "Artifact": "runs",
    "ArtifactVersion": "views",
    "AuditEvent": "records",
    "Delivery": "records",
    "Diff": "manifest",
    "Lineage": "lineage",
    "Manifest": "manifest",
    "ManifestEntry": "manifest",
    "Run": "views",
    "Store": "store",
    "finish": "runs",
    "init": "runs",
    "log": "runs",
    "log_artifact": "runs",
    "open": "store",
    "use_artifact": "runs",
    "Webhook": "records",
}


def __getattr__(name: str) -> Any:
    if name in ("run", "config"):  # W&B's wandb.run and wandb.config, looked up each time
        from .runs import active_run

        run = active_run()
        if name == "run":
            return run  # None before init
        return {} if run is None else run.config
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
