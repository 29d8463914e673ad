"""W&B's helper names that training scripts call on the module, kept under the names they
use: ``wandb.util.generate_id()`` (for a run id chosen before `forebear.init`), and
``wandb.termlog`` / ``termwarn`` / ``termerror`` / ``setup``, which `forebear` exports."""

from __future__ import annotations

import sys
from random import SystemRandom

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_SYSTEM_RANDOM = SystemRandom()  # os.urandom, as `secrets` (whose import costs 6 ms)


def generate_id(length: int = 8) -> str:
    """A new random id of lowercase letters and digits, as W&B's: a run id for
    `forebear.init(id=...)` at up to 64 of them."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a whole number from 1, not {length!r}")
    return "".join(_SYSTEM_RANDOM.choice(_ALPHABET) for _ in range(length))


def termlog(
    string: str = "", newline: bool = True, repeat: bool = True, prefix: bool = True
) -> None:
    """W&B's ``wandb.termlog``: a line for the person watching, on standard error."""
    del repeat
    end = "\n" if newline else ""
    print(("forebear: " if prefix else "") + str(string), end=end, file=sys.stderr)


def termwarn(string: str, newline: bool = True, repeat: bool = True, prefix: bool = True) -> None:
    """`termlog`, marked as a warning."""
    termlog(f"WARNING {string}", newline, repeat, prefix)


def termerror(string: str, newline: bool = True, repeat: bool = True, prefix: bool = True) -> None:
    """`termlog`, marked as an error."""
    termlog(f"ERROR {string}", newline, repeat, prefix)


def setup(settings: object = None) -> None:
    """W&B's ``wandb.setup()``, which prepares its background service before processes
    start: forebear has none, so there is nothing to prepare."""
    del settings
