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
    from . import plot
    from .api import Api
    from .histograms import Histogram
    from .lineage import Lineage
    from .manifest import Diff, Manifest, ManifestEntry
    from .media import Image
    from .media_files import Audio, Html, Video
    from .records import AuditEvent, Delivery, Webhook
    from .runchecks import AlertLevel
    from .runs import (
        Artifact,
        alert,
        define_metric,
        finish,
        init,
        join,
        link_model,
        log,
        log_artifact,
        log_model,
        login,
        restore,
        save,
        unwatch,
        use_artifact,
        use_model,
        watch,
    )
    from .store import Store, open
    from .tables import Table
    from .util import setup, termerror, termlog, termwarn
    from .views import ArtifactVersion, Run

    run: Run | None  # the active run (W&B's wandb.run), looked up on each use
    config: dict[str, Any]  # its config (W&B's wandb.config); {} with no run
    summary: dict[str, Any]  # its summary (W&B's wandb.summary); {} with no run

__version__ = "0.1.0"

_LAZY = {
    "AlertLevel": "runchecks",
    "Api": "api",
    "Artifact": "runs",
    "ArtifactVersion": "views",
    "AuditEvent": "records",
    "Delivery": "records",
    "Diff": "manifest",
    "Image": "media",
    "Lineage": "lineage",
    "Manifest": "manifest",
    "ManifestEntry": "manifest",
    "Run": "views",
    "Store": "store",
    "Table": "tables",
    "Histogram": "histograms",
    "Audio": "media_files",
    "Video": "media_files",
    "Html": "media_files",
    "alert": "runs",
    "define_metric": "runs",
    "finish": "runs",
    "init": "runs",
    "join": "runs",
    "link_model": "runs",
    "log": "runs",
    "log_artifact": "runs",
    "log_model": "runs",
    "login": "runs",
    "open": "store",
    "restore": "runs",
    "setup": "util",
    "save": "runs",
    "termerror": "util",
    "termlog": "util",
    "termwarn": "util",
    "unwatch": "runs",
    "use_artifact": "runs",
    "use_model": "runs",
    "watch": "runs",
    "Webhook": "records",
}


# W&B names forebear has no counterpart for: what to do instead, said where a W&B script
# reaches for one (a bare AttributeError told nothing)
_MEDIA = (
    "forebear keeps numbers, tables, images, audio, video, pages, histograms, charts and "
    "files, not W&B's other media types: write the file and keep it with run.save(path), or "
    "add it to an Artifact"
)
_WANDB_ONLY = {
    **dict.fromkeys(
        ("Object3D", "Molecule", "Plotly", "Graph", "Bokeh"),
        _MEDIA,
    ),
    **dict.fromkeys(
        ("sweep", "agent", "controller"),
        "forebear runs no sweeps: start one run per trial with forebear.init(config=...)",
    ),
    **dict.fromkeys(
        ("sklearn", "keras", "integration", "xgboost", "lightgbm"),
        "forebear has no framework callbacks: log metrics with run.log(...), charts with "
        "forebear.plot (confusion_matrix, roc_curve, pr_curve) and models with run.log_model",
    ),
}  # fmt: skip


class Settings:
    """W&B's ``wandb.Settings(...)``, for ``init(settings=...)``: accepted so that W&B
    code runs, and changes nothing."""

    def __init__(self, **options: Any) -> None:
        self.options = options


def __getattr__(name: str) -> Any:
    if name in ("run", "config", "summary"):  # W&B's wandb.run, .config, .summary, looked
        from .runs import active_run  # up each time

        run = active_run()
        if name == "run":
            return run  # None before init
        if run is None:
            return {}
        return run.config if name == "config" else run.summary
    if name in ("util", "plot"):  # W&B's wandb.util.generate_id(), wandb.plot.line(...)
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        instead = _WANDB_ONLY.get(name)
        raise AttributeError(
            f"module 'forebear' has no attribute {name!r}" + (f" ({instead})" if instead else "")
        )
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AlertLevel",
    "Api",
    "Artifact",
    "ArtifactNotFound",
    "ArtifactVersion",
    "Audio",
    "AuditEvent",
    "AuthenticationError",
    "Delivery",
    "Diff",
    "ForebearError",
    "ForebearWarning",
    "GraphvizNotFound",
    "Histogram",
    "Html",
    "Image",
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
    "Settings",
    "Store",
    "StoreError",
    "StoreNotFound",
    "StoreVersionError",
    "Table",
    "VersionNotFound",
    "Video",
    "Webhook",
    "__version__",
    "alert",
    "define_metric",
    "finish",
    "init",
    "join",
    "link_model",
    "log",
    "log_artifact",
    "log_model",
    "login",
    "open",
    "plot",
    "restore",
    "save",
    "setup",
    "termerror",
    "termlog",
    "termwarn",
    "unwatch",
    "use_artifact",
    "use_model",
    "util",
    "watch",
]
