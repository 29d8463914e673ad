"""A run's config read from a YAML file, as W&B reads one: ``init(config="cfg.yaml")``,
``run.config.update("cfg.yaml")``, and the ``config-defaults.yaml`` of the folder a script
starts in, which W&B loads by itself (its sweeps' convention).

W&B writes each key as ``{value: ..., desc: ...}`` beside a ``wandb_version: 1`` line; a
plain ``lr: 0.1`` file is read too. PyYAML loads only when a file is read."""

from __future__ import annotations

import os
from typing import Any

from .errors import InvalidInput

# What W&B loads by itself from the folder a run starts in.
DEFAULTS_FILE = "config-defaults.yaml"
_W_AND_B_KEYS = {"value", "desc"}
# Values a config file may hold, counted as its aliases expand: a few lines of YAML
# aliases (a "billion laughs") stand for more values than any memory holds.
MOST_VALUES = 100_000


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config a YAML file holds: each key's ``value`` in W&B's form, else the value
    itself. A file that is missing, not YAML, or not a mapping raises `InvalidInput`."""
    import yaml  # type: ignore[import-untyped]

    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as file:
            loaded = yaml.safe_load(file)
    except OSError as exc:
        raise InvalidInput(f"cannot read the config file {shown!r}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the config file {shown!r} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict) or not all(isinstance(key, str) for key in loaded):
        raise InvalidInput(
            f"the config file {shown!r} must map names to values (lr: 0.1), not hold "
            f"{type(loaded).__name__}"
        )
    if _count_reaches(loaded, MOST_VALUES):
        raise InvalidInput(
            f"the config file {shown!r} holds more than {MOST_VALUES:,} values once its "
            "aliases are expanded: a config is settings, not data (log data as an Artifact)"
        )
    version = loaded.pop("wandb_version", None)
    if version not in (None, 1):
        raise InvalidInput(f"the config file {shown!r} has wandb_version {version!r}; W&B's is 1")
    return {key: _unwrapped(value) for key, value in loaded.items()}


def _count_reaches(loaded: Any, most: int) -> bool:
    """Whether ``loaded`` holds ``most`` values or more, counting a value met through
    several aliases each time (as JSON will write it); stops as soon as it does."""
    count, pending = 0, [loaded]
    while pending:
        value = pending.pop()
        count += 1
        if count >= most:
            return True
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _unwrapped(value: Any) -> Any:
    if isinstance(value, dict) and "value" in value and value.keys() <= _W_AND_B_KEYS:
        return value["value"]
    return value


def config_defaults(folder: str | None = None) -> dict[str, Any]:
    """What ``config-defaults.yaml`` in ``folder`` (default: the current one) holds, as
    W&B loads it at every ``init``; empty without one."""
    path = os.path.join(folder or os.curdir, DEFAULTS_FILE)
    return read_config_file(path) if os.path.isfile(path) else {}
