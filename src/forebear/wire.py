"""What crosses the HTTP seam between a forebear server and its clients: the backend's plain
records, reports and errors as JSON, and back.

Values are JSON with one-key tags for what JSON lacks (``{"$dt": iso}`` for a datetime,
``{"$o": "VersionData", "v": [...]}`` for a record). Only the types listed here are ever
built from what arrives, so a request cannot make the other side construct anything else;
errors travel by name and come back as the same `forebear.errors` class.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from typing import Any

from . import errors
from .chunking import Chunking, ChunkList
from .errors import InvalidInput, Problem
from .manifest import ManifestEntry
from .paths import Ref
from .records import (
    AuditEvent,
    Delivery,
    LineageData,
    Redaction,
    RetentionPolicy,
    RunData,
    RunSummary,
    TokenInfo,
    UserInfo,
    VersionData,
    Webhook,
)
from .reports import GcReport, Missing, PruneReport, PurgeReport, RepairReport, TransferReport

# A redirect to a URL signed for a byte range of its key (a packed object in its pack) names
# the range in this header; the client sends it as ``Range``, or the URL is refused.
RANGE_HEADER = "Forebear-Range"

_RECORDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        AuditEvent, Delivery, LineageData, Redaction, RetentionPolicy, RunData, RunSummary,
        TokenInfo, UserInfo, VersionData, Webhook,
    )
}  # fmt: skip
_DATACLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ManifestEntry, ChunkList, Chunking, Problem, Ref, GcReport, PruneReport, PurgeReport,
        RepairReport, Missing, TransferReport,
    )
}  # fmt: skip


def encode(value: Any) -> Any:
    """A JSON-ready form of ``value``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    name = type(value).__name__
    if name in _RECORDS and isinstance(value, tuple):
        return {"$o": name, "v": [encode(v) for v in value]}
    if name in _DATACLASSES and dataclasses.is_dataclass(value):
        fields = [encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init]
        return {"$o": name, "v": fields}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, frozenset):
        return {"$fs": [encode(v) for v in sorted(value, key=repr)]}
    if isinstance(value, set):
        return {"$set": [encode(v) for v in sorted(value, key=repr)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"$d": {k: encode(v) for k, v in value.items()}}
        return {"$m": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    raise TypeError(f"cannot send a {type(value).__name__} to or from a forebear server")


def decode(data: Any) -> Any:
    """The value `encode` made; `InvalidInput` for anything else."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise InvalidInput("malformed request: a value the forebear protocol does not know")
    try:
        if "$o" in data:
            cls = _RECORDS.get(data["$o"]) or _DATACLASSES.get(data["$o"])
            if cls is None or not isinstance(data.get("v"), list):
                raise InvalidInput(f"malformed request: unknown record {data['$o']!r}")
            return cls(*[decode(v) for v in data["v"]])
        ((tag, body),) = data.items()
        if tag == "$t":
            return tuple(decode(v) for v in body)
        if tag == "$fs":
            return frozenset(decode(v) for v in body)
        if tag == "$set":
            return {decode(v) for v in body}
        if tag == "$d":
            return {str(k): decode(v) for k, v in body.items()}
        if tag == "$m":
            return {decode(k): decode(v) for k, v in body}
        if tag == "$dt":
            return dt.datetime.fromisoformat(body)
        if tag == "$td":
            return dt.timedelta(seconds=float(body))
        if tag == "$b":
            return base64.b64decode(body, validate=True)
    except InvalidInput:
        raise
    # OverflowError: a duration beyond any float or timedelta ({"$td": 1e300})
    except (TypeError, ValueError, AttributeError, OverflowError, errors.ForebearError) as error:
        raise InvalidInput(f"malformed request: {error}") from None
    raise InvalidInput("malformed request: a value the forebear protocol does not know")


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value), separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise InvalidInput(f"malformed request: not JSON ({error})") from None
    try:
        return decode(parsed)
    except RecursionError:
        raise InvalidInput("malformed request: nested too deeply") from None


# -- errors ------------------------------------------------------------------------------

_ERRORS: dict[str, type[errors.ForebearError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, errors.ForebearError)
}

# HTTP statuses by error class, most specific first
_STATUSES: tuple[tuple[type[errors.ForebearError], int], ...] = (
    (errors.AuthenticationError, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.InvalidInput, 400),
    (errors.RunStateError, 409),
    (errors.IntegrityError, 422),
)


def status_of(error: errors.ForebearError) -> int:
    for cls, status in _STATUSES:
        if isinstance(error, cls):
            return status
    return 400


def error_body(error: errors.ForebearError) -> bytes:
    problems = getattr(error, "problems", None) or []
    body = {"error": type(error).__name__, "message": str(error), "problems": encode(problems)}
    return json.dumps(body).encode()


def error_from(status: int, raw: bytes) -> errors.ForebearError:
    """The error a server's answer describes, as the class it was raised as."""
    try:
        body = json.loads(raw)
        cls = _ERRORS.get(str(body.get("error")), errors.StoreError)
        message = str(body.get("message") or f"the forebear server answered {status}")
        if cls is errors.IntegrityError:
            return errors.IntegrityError(message, list(decode(body.get("problems") or [])))
        return cls(message)
    except (ValueError, AttributeError):
        if status == 401:
            return errors.AuthenticationError("the forebear server wants a valid token")
        if status == 403:
            return errors.PermissionDenied("the forebear server refused this")
        return errors.StoreError(f"the forebear server answered {status}: {raw[:200]!r}")
