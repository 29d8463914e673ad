"""Rules for names, refs and entry paths, enforced before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from .errors import InvalidName, InvalidPath, InvalidRef

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VERSION_RE = re.compile(r"^v(0|[1-9][0-9]*)$")
_LOOKS_LIKE_VERSION_RE = re.compile(r"^v[0-9]+$")
_DRIVE_RE = re.compile(r"^[^\W\d_]:")  # any letter then a colon, like "C:"

NAME_RULES = "1-128 characters from letters, digits, '.', '_', '-', starting with a letter or digit"
RUN_ID_RULES = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_name(name: object) -> bool:
    """Whether ``name`` follows the rules of project, artifact and alias names."""
    return isinstance(name, str) and bool(_NAME_RE.fullmatch(name))


REGISTRY = "registry"  # the reserved project whose collections hold links


def is_run_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a run id (`RUN_ID_RULES`). forebear makes 8 lowercase letters
    and digits, as W&B's ``generate_id`` does; a script may choose its own, as W&B lets it
    (``id="resnet50-seed1"``), of up to W&B's 64 characters, from characters that read the
    same in a URL, a path and a shell."""
    return isinstance(value, str) and bool(_RUN_ID_RE.fullmatch(value))


def is_wandb_registry(project: str) -> bool:
    """Whether a W&B path's project part names a registry (``wandb-registry-model``, or
    the older model registry's ``model-registry``): one registry, ``registry``, holds
    every kind here."""
    return project.startswith("wandb-registry-") or project == "model-registry"


def check_name(name: object, kind: str = "artifact") -> str:
    """Return ``name`` unchanged if it is a valid project or artifact name."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidName(f"invalid {kind} name {name!r}: use {NAME_RULES}")
    return name


def check_alias(alias: object, what: str = "alias") -> str:
    """Return ``alias`` if it is a valid alias (or tag: they follow the same rules); aliases
    may not look like versions."""
    check_name(alias, what)
    assert isinstance(alias, str)
    if _LOOKS_LIKE_VERSION_RE.fullmatch(alias):
        example = "'best'" if what == "alias" else "'baseline'"
        raise InvalidName(
            f"invalid {what} {alias!r}: it looks like a version number; pick a name such as "
            f"{example}"
        )
    return alias


def is_version(text: str) -> bool:
    return bool(_VERSION_RE.fullmatch(text))


# More digits than any version number has: read as a number no catalog holds (Python
# refuses to convert a string of more than 4,300 digits at all).
_MOST_DIGITS = 19


def version_number(text: str) -> int:
    """``v12`` -> 12; a number of more than 19 digits as 10**19, which no version has."""
    digits = text[1:]
    return int(digits) if len(digits) <= _MOST_DIGITS else 10**_MOST_DIGITS


def check_text(path: str) -> str:
    """Refuse a name that is not valid Unicode text: a file name in another encoding
    decodes to lone surrogates, which no manifest, database or other machine can hold."""
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPath(
                f"entry path {path!r} is not valid UTF-8 (a file name in another "
                "encoding?); rename the file, or pass name= with a UTF-8 name"
            ) from None
    return path


def is_canonical_entry_path(path: str) -> bool:
    """Whether ``path`` is already in `normalise_entry_path`'s form (a fast check for paths
    read back from a catalog, which must never be trusted to be safe)."""
    if not path or path[0] == "/" or path[-1] == "/" or "//" in path:
        return False
    if "\\" in path or "\x00" in path or _DRIVE_RE.match(path):
        return False
    wrapped = f"/{path}/"
    return "/./" not in wrapped and "/../" not in wrapped


def normalise_entry_path(path: object) -> str:
    """The canonical relative POSIX form of an entry path, or `InvalidPath` if unsafe.

    Backslashes are treated as separators so a manifest written on Windows cannot smuggle
    a ``..\\`` past the check; ``.`` parts and repeated slashes are dropped.
    """
    if not isinstance(path, str):
        raise InvalidPath(f"entry path must be a string, not {type(path).__name__}")
    if "\x00" in path:
        raise InvalidPath(f"entry path {path!r} contains a NUL character")
    check_text(path)
    text = path.replace("\\", "/")
    if text.startswith("/"):
        raise InvalidPath(f"entry path {path!r} is absolute; entry paths must be relative")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidPath(f"entry path {path!r} contains '..'; entry paths may not leave the root")
    if not parts:
        raise InvalidPath(f"entry path {path!r} is empty")
    normal = "/".join(parts)
    if _DRIVE_RE.match(normal):  # "c:", or "./c:" once its "./" is dropped: a Windows drive
        raise InvalidPath(
            f"entry path {path!r} begins with a drive ({normal[:2]!r}), which makes it "
            "absolute on Windows; entry paths must be relative: name it otherwise"
        )
    return normal


@dataclass(frozen=True)
class Ref:
    """A parsed ref: ``[project/]name[:version-or-alias]``; ``selector`` defaults to latest."""

    project: str | None
    name: str
    selector: str = "latest"

    def __str__(self) -> str:
        prefix = f"{self.project}/" if self.project else ""
        return f"{prefix}{self.name}:{self.selector}"


def parse_ref(text: object) -> Ref:
    if not isinstance(text, str) or not text.strip():
        raise InvalidRef(
            f"invalid ref {text!r}: expected 'name', 'name:v3' or 'project/name:alias'"
        )
    project: str | None = None
    rest = text.strip()
    parts = rest.partition(":")[0].split("/")
    if len(parts) in (2, 3) and is_wandb_registry(parts[-2]):  # [org/]wandb-registry-x/name
        rest = f"{REGISTRY}/{rest.split('/', len(parts) - 1)[-1]}"
    if rest.partition(":")[0].count("/") == 2:  # W&B's entity/project/name: a store is
        entity, rest = rest.split("/", 1)  # one team's, so the entity names nothing more
        check_name(entity, "entity")
    if rest.partition(":")[0].count("/") > 1:
        raise InvalidRef(
            f"invalid ref {text!r}: a ref is 'project/name:version' or 'name:alias' (W&B's "
            "'entity/project/name:alias' too)"
        )
    if "/" in rest:
        project, rest = rest.split("/", 1)
        check_name(project, "project")
    if rest.count(":") > 1:
        raise InvalidRef(f"invalid ref {text!r}: expected at most one ':' (name:version)")
    name, colon, selector = rest.partition(":")
    check_name(name, "artifact")
    if colon and not selector.strip():
        raise InvalidRef(
            f"invalid ref {text!r}: nothing follows ':'; name a version or an alias "
            f"('{name}:v3', '{name}:latest'), or leave out the ':'"
        )
    if not selector:
        selector = "latest"
    elif not is_version(selector):
        try:
            check_name(selector, "alias")
        except InvalidName as exc:
            raise InvalidRef(
                f"invalid ref {text!r}: {selector!r} is neither a version (v0, v1, ...) "
                "nor an alias"
            ) from exc
    return Ref(project, name, selector)
