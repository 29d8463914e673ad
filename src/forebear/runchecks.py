"""What describes a run, checked the same way wherever it comes from: `init`, a change
made after the fact (W&B's ``run.update()``) and a client of a forebear server."""

from __future__ import annotations

import enum
from typing import Any

from .errors import InvalidInput
from .jsonvalues import check_no_nul, json_dict

MAX_NAME = 256  # a run's name, and each of W&B's short words (job_type, group, a tag)
MAX_NOTES = 100_000
# What a run keeps of it that may change once it has ended, as W&B lets its users change
# them: its name, config and summary, and two of the words `init` keeps in its context.
EDITABLE = ("name", "tags", "notes", "config", "summary")
# What the process that resumes a run says of itself, so that readers judge the run alive
# by it (see `forebear.liveness`); the rest of the run's context stays as it began.
PROCESS = {"host": str, "pid": int, "pid_namespace": str, "process_started": int}
_LARGEST_NUMBER = 2**53  # a process id or start time; JSON keeps integers up to this exactly


def described_as(**words: object) -> dict[str, Any]:
    """W&B's words for a run, checked (texts, and a list of texts for ``tags``), those
    that are None left out."""
    described: dict[str, Any] = {}
    for word, value in words.items():
        if value is None:
            continue
        if word == "tags":
            described[word] = checked_tags(value)
        elif not isinstance(value, str) or len(value) > (
            MAX_NOTES if word == "notes" else MAX_NAME
        ):
            raise InvalidInput(f"{word} must be a short text, not {value!r:.80}")
        else:
            described[word] = check_no_nul(value, word)
    return described


def checked_run_name(value: object) -> str:
    """A run's name, as `init`, a change after the fact and a server's client give it."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise InvalidInput(
            f"a run name must be a non-empty string of at most {MAX_NAME} characters"
        )
    return check_no_nul(value, "a run name")


def checked_tags(value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidInput(f"tags must be a list of texts, not {value!r:.80}")
    if not all(isinstance(tag, str) and 0 < len(tag) <= MAX_NAME for tag in value):
        raise InvalidInput(f"tags must be texts of 1 to {MAX_NAME} characters: {value!r:.80}")
    return [check_no_nul(tag, "a tag") for tag in value]


def checked_run_edit(changes: object) -> dict[str, Any]:
    """A change of a run after the fact (see `EDITABLE`), as the catalog keeps it: a name
    of 1 to 256 characters, tags, notes (None: none), and a whole new config or summary
    (NaN and the infinities kept as text in a summary, as `log` keeps them)."""
    if not isinstance(changes, dict) or not changes:
        raise InvalidInput(f"a run's changes are a dict of some of {EDITABLE}, not {changes!r:.80}")
    unknown = sorted(set(changes) - set(EDITABLE), key=str)
    if unknown:
        raise InvalidInput(f"a run's {unknown[0]!r:.80} cannot be changed: only {EDITABLE}")
    checked: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "name":
            checked[field] = checked_run_name(value)
        elif field == "tags":
            checked[field] = checked_tags(value)
        elif field == "notes":
            checked[field] = None if value is None else described_as(notes=value)["notes"]
        else:
            if not isinstance(value, dict):
                raise InvalidInput(f"a run's {field} is a dict, not {type(value).__name__}")
            checked[field] = json_dict(value, field, non_finite_as_text=field == "summary")
    return checked


def checked_process(process: object) -> dict[str, Any]:
    """What a resuming process says of itself (see `PROCESS`): its host and process id,
    and, where known, its PID namespace and start time."""
    if not isinstance(process, dict) or not {"host", "pid"} <= process.keys() <= PROCESS.keys():
        raise InvalidInput(
            f"a resuming process is described by a dict of {sorted(PROCESS)} (host and pid "
            f"at least), not {process!r:.80}"
        )
    for key, value in process.items():
        if value is None and key not in ("host", "pid"):
            continue
        kind = PROCESS[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            said = "a text" if kind is str else "a whole number"
            raise InvalidInput(f"a process's {key} is {said}, not {value!r:.80}")
        if isinstance(value, str) and not 0 < len(value) <= MAX_NAME:
            raise InvalidInput(f"a process's {key} is 1 to {MAX_NAME} characters")
        if isinstance(value, int) and not 0 <= value < _LARGEST_NUMBER:
            raise InvalidInput(f"a process's {key} is a number from 0 to 2**53, not {value}")
    return {**process, "host": check_no_nul(process["host"], "a host name")}


class AlertLevel(str, enum.Enum):
    """W&B's ``wandb.AlertLevel``: how much an alert (`Run.alert`) matters."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


def checked_alert(title: object, text: object, level: object) -> tuple[str, str, str]:
    """An alert's title (1 to 256 characters), text (up to 100,000) and level (one of
    `AlertLevel`, by value or name, in any case)."""
    if not isinstance(title, str) or not 0 < len(title) <= MAX_NAME:
        raise InvalidInput(
            f"an alert's title is a text of 1 to {MAX_NAME} characters, not {title!r:.80}"
        )
    if not isinstance(text, str) or len(text) > MAX_NOTES:
        raise InvalidInput(f"an alert's text is a text of at most {MAX_NOTES:,} characters")
    said = level.value if isinstance(level, AlertLevel) else level
    if not isinstance(said, str) or said.upper() not in AlertLevel.__members__:
        raise InvalidInput(f"an alert's level is one of INFO, WARN and ERROR, not {level!r:.80}")
    return (
        check_no_nul(title, "an alert's title"),
        check_no_nul(text, "an alert's text"),
        said.upper(),
    )
