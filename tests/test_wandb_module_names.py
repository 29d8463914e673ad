"""W&B's helper names on the module that training scripts call: ``wandb.util.generate_id()``,
``termlog`` and friends, ``setup()``, ``join()`` and ``config.setdefaults``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import forebear


def test_generate_id_makes_ids_init_takes(store: forebear.Store) -> None:
    chosen = forebear.util.generate_id()
    assert len(chosen) == 8 and chosen.isalnum() and chosen == chosen.lower()
    assert len({forebear.util.generate_id() for _ in range(100)}) == 100
    assert len(forebear.util.generate_id(4)) == 4
    with pytest.raises(ValueError, match="length must be a whole number"):
        forebear.util.generate_id(0)
    run = forebear.init(project="p", store=store, id=chosen, resume="allow")
    assert run.id == chosen
    forebear.join()  # W&B's older finish
    assert store.run(chosen).status == "finished" and forebear.run is None


def test_config_setdefaults_sets_only_what_is_not_set(store: forebear.Store) -> None:
    with forebear.init(project="p", store=store, config={"lr": 0.1}) as run:
        forebear.setup()
        run.config.setdefaults({"lr": 0.5, "epochs": 3})
        assert run.config == {"lr": 0.1, "epochs": 3}
    assert store.run(run.id).config == {"lr": 0.1, "epochs": 3}  # saved as it changed


def test_term_messages_go_to_standard_error() -> None:
    script = (
        "import forebear as wandb\n"
        "wandb.termlog('starting'); wandb.termwarn('slow disk'); wandb.termerror('bad batch')\n"
        "wandb.termlog('bare', prefix=False)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "forebear: starting", "forebear: WARNING slow disk", "forebear: ERROR bad batch",
        "bare",
    ]  # fmt: skip
