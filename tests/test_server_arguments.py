"""A client that is not forebear's skips every check the public API makes before it calls
its backend. The server makes them again: whatever a call's arguments, the answer is one
clear 4xx and the catalog is unchanged, on SQLite and on PostgreSQL (which holds names to
their columns' sizes, integers to 64 bits and JSON to its grammar, and answered such
values with a server error)."""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forebear
from forebear import wire
from forebear.paths import Ref
from forebear.server.app import CALLS
from forebear.server.policy import GuardedBackend

from .serving import ForebearServer

pytestmark = pytest.mark.server

NAN, INF = float("nan"), float("inf")
LONG = "x" * 5000
HUGE = 10**30


class Served:
    """A server with one version ``p/ds:v0`` and one running run, reached as its admin."""

    def __init__(self, server: ForebearServer, data: Path) -> None:
        self.server = server
        self.store = server.store()
        with forebear.init(project="p", store=self.store) as run:
            self.version = run.log_artifact(data, name="ds")
        self.run = forebear.init(project="p", name="live", config={"lr": 1}, store=self.store)
        self.run.log({"loss": 0.5})
        self.client = httpx.Client(
            base_url=server.url,
            headers={"authorization": f"Bearer {server.admin_token}"},
            timeout=120,
        )

    def close(self) -> None:
        self.run.finish()
        self.client.close()
        self.store.close()

    def post(self, path: str, value: Any) -> httpx.Response:
        # json.dumps, not wire.dumps: NaN and Infinity go out as another client sends them
        return self.client.post(path, content=json.dumps(wire.encode(value)).encode())

    def call(self, method: str, **kwargs: Any) -> httpx.Response:
        return self.post(f"/api/v1/call/{method}", {"args": [], "kwargs": kwargs})

    def state(self) -> tuple[Any, ...]:
        """What a refused call must leave as it was."""
        run = self.store.run(self.run.id)
        versions = self.store.versions("ds", project="p")
        return (
            [r.id for r in self.store.runs()],
            run.name, run.tags, run.notes, run.config, run.summary, run.history(),
            [(v.ref, v.description, v.metadata, v.aliases, v.tags, v.ttl) for v in versions],
        )  # fmt: skip


@pytest.fixture(params=["folder", "team"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, make_tree: Callable[..., Path]
) -> Iterator[Served]:
    if request.param == "team":
        server = request.getfixturevalue("team_server")
    else:
        server = ForebearServer.over_folder(tmp_path)
    try:
        served = Served(server, make_tree("data", {"a.txt": "a", "b/c.txt": "c"}))
        yield served
        served.close()
    finally:
        if request.param == "folder":
            server.stop()


def refused(served: Served, response: httpx.Response, says: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    assert says in response.json()["message"], response.text


def test_values_the_catalog_cannot_hold_are_refused_clearly(served: Served) -> None:
    before = served.state()
    run_id, version = served.run.id, served.store.backend.version_by_id(served.version.id)
    new_run = {"project": "p", "name": "n", "config": {}, "context": {}, "started_at": None}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("create_run", {**new_run, "run_id": LONG}, "a run id is 1 to 64"),
        ("create_run", {**new_run, "run_id": "x" * 65}, "a run id is 1 to 64"),
        ("create_run", {**new_run, "run_id": "../x"}, "a run id is 1 to 64"),
        ("create_run", {**new_run, "run_id": "ok1", "project": LONG}, "invalid project name"),
        ("create_run", {**new_run, "run_id": "ok2", "name": LONG}, "at most 256 characters"),
        ("create_run", {**new_run, "run_id": "ok3", "config": {"a": NAN}}, "finite numbers"),
        ("update_run", {"run_id": run_id, "status": None, "summary": {"a": INF},
                        "ended_at": None, "config": None}, "finite numbers"),
        ("log_history", {"run_id": run_id, "steps": [HUGE], "values": [{"x": 1}], "summary": {}},
         "steps cannot be"),
        ("log_history", {"run_id": run_id, "steps": [-1], "values": [{"x": 1}], "summary": {}},
         "step must be a whole number from 0"),
        ("log_history", {"run_id": run_id, "steps": [1, 2], "values": [{"x": 1}], "summary": {}},
         "2 steps for 1 values"),
        ("log_history", {"run_id": run_id, "steps": [1], "values": [{"x": NAN}], "summary": {}},
         "values cannot be"),
        ("log_history", {"run_id": run_id, "steps": [1], "values": [{LONG: 1}], "summary": {}},
         "at most 256 characters"),
        ("log_history", {"run_id": run_id, "steps": [1], "values": [{"x": 10**400}],
                         "summary": {}},
         "values cannot be"),  # float() of it would overflow
        ("link", {"version_id": version.id, "collection": LONG, "aliases": [], "reason": None,
                  "run_id": None}, "invalid collection name"),
        ("link", {"version_id": HUGE, "collection": "c", "aliases": [], "reason": None,
                  "run_id": None}, "version_id cannot be"),
        ("set_alias", {"version": version, "alias": LONG, "run_id": None, "reason": None,
                       "force": False}, "invalid alias name"),
        ("protect_alias", {"ref": Ref("p", "ds", "v0"), "default_project": None,
                           "alias": LONG, "protect": True}, "invalid alias name"),
        ("edit_version", {"version": version, "changes": {"metadata": {"a": NAN}}},
         "finite numbers"),
        ("edit_version", {"version": version, "changes": {"tags": [LONG]}}, "invalid tag name"),
        ("edit_version", {"version": version, "changes": {"aliases": "best"}},
         "a list of names"),
        ("set_retention", {"ref": Ref("p", "ds", "v0"), "default_project": None,
                           "keep_last": HUGE, "max_age": None, "keep_aliased": True},
         "keep_last cannot be"),
        ("entries", {"version_id": HUGE, "start": 0, "limit": None}, "version_id cannot be"),
        ("deliveries", {"webhook_id": None, "limit": HUGE}, "limit cannot be"),
        ("deliveries", {"webhook_id": 1, "limit": -1}, "a whole number from 0"),
        ("gc", {"dry_run": True, "grace": dt.timedelta(days=10**8)}, "grace cannot be"),
        ("set_retention", {"ref": Ref("p", "ds", "v0"), "default_project": None,
                           "keep_last": None, "max_age": dt.timedelta(days=-1),
                           "keep_aliased": True}, "max_age cannot be"),
        ("entries", {"version_id": version.id, "start": -5, "limit": 10},
         "a whole number from 0"),
        ("lineage", {"version_id": version.id, "upstream": True, "downstream": True,
                     "depth": -3}, "a whole number from 0"),
        ("edit_run", {"run_id": run_id, "changes": {"context": {"git": None}}},
         "'context' cannot be changed"),
        ("edit_run", {"run_id": run_id, "changes": {"name": "n" * 257}}, "at most 256 characters"),
        ("edit_run", {"run_id": run_id, "changes": {"config": {"a": NAN}}}, "finite numbers"),
        ("edit_run", {"run_id": run_id, "changes": {"tags": "best"}}, "a list of texts"),
        ("edit_run", {"run_id": run_id, "changes": {}}, "a dict of some of"),
        # PostgreSQL stores no NUL character: refused wherever a text comes in
        ("edit_run", {"run_id": run_id, "changes": {"name": "a\x00b"}}, "NUL"),
        ("create_run", {**new_run, "run_id": "ok4", "name": "a\x00b"}, "NUL"),
        ("resume_run", {"run_id": run_id, "process": {"host": "h\x00", "pid": 1}}, "NUL"),
        ("resume_run", {"run_id": run_id, "process": {"host": "h", "pid": -1}},
         "a number from 0 to 2**53"),
        ("resume_run", {"run_id": run_id, "process": {"host": "h", "pid": True}},
         "pid is a whole number"),
        ("resume_run", {"run_id": run_id, "process": {"host": "h", "pid": 1, "git": {}}},
         "a resuming process is described by"),
        ("resume_run", {"run_id": run_id, "process": {"host": LONG, "pid": 1}},
         "1 to 256 characters"),
        ("create_run", {**new_run, "run_id": "ok5", "config": {"k": "\x00"}}, "NUL"),
        ("set_alias", {"version": version, "alias": "best", "run_id": None,
                       "reason": "a\x00b", "force": False}, "NUL"),
        ("log_history", {"run_id": run_id, "steps": [1], "values": [{"a\x00": 1}], "summary": {}},
         "NUL"),
    ]  # fmt: skip
    for method, kwargs, says in cases:
        refused(served, served.call(method, **kwargs), says)
    assert served.state() == before


def test_a_change_of_a_run_is_stored_as_the_api_stores_it(served: Served) -> None:
    """What a foreign client sends to ``edit_run`` is kept as the Python API keeps it: NaN
    in a summary as the text ``"NaN"``, a tuple as a list (never a value no JSON reader
    or PostgreSQL column takes)."""
    changes = {"summary": {"a": NAN, "b": -INF}, "config": {"pair": [1, 2]}, "tags": ["t"]}
    answer = served.call("edit_run", run_id=served.run.id, changes=changes)
    assert answer.status_code == 200, answer.text
    run = served.store.run(served.run.id)
    assert run.summary == {"a": "NaN", "b": "-Infinity"}
    assert (run.config, run.tags) == ({"pair": [1, 2]}, ["t"])


def test_metrics_a_foreign_client_sends_are_kept_as_the_api_keeps_them(served: Served) -> None:
    """A whole number beyond the catalog's 64-bit integers is kept as its float, as
    `run.log` keeps it (stored whole, it overflowed the column: a server error)."""
    values = {"epoch": 3, "seen": 2**70, "loss": 0.5}
    answer = served.call(
        "log_history", run_id=served.run.id, steps=[7], values=[values], summary={}
    )
    assert answer.status_code == 200, answer.text
    row = served.store.run(served.run.id).history()[-1]
    assert row == {"step": 7, "epoch": 3, "seen": float(2**70), "loss": 0.5}
    assert type(row["epoch"]) is int


def test_a_commit_is_checked_before_it_reaches_the_catalog(served: Served) -> None:
    """The fields of ``POST /api/v1/commit`` the catalog would take as they are."""
    before = served.state()
    body = {
        "project": "p", "name": "ds", "type": "dataset", "description": None, "metadata": {},
        "digest": served.version.digest, "chunk_lists": [], "run_id": None, "aliases": [],
        "tags": [], "ttl": None, "new_bytes": 0, "base": None,
    }  # fmt: skip
    cases: list[tuple[str, Any, str]] = [
        ("digest", LONG, "no xxh3-128 digest"),  # and no path of the server's in the answer
        ("digest", "../../meta.db", "no xxh3-128 digest"),
        ("description", {"a": 1}, "a description is text"),
        ("ttl", dt.timedelta(days=-1), "ttl must be a positive"),
        ("ttl", dt.timedelta(days=10**8), "ttl must be a positive"),
        ("ttl", 5, "ttl must be a positive"),
        ("new_bytes", HUGE, "new_bytes cannot be"),
        ("new_bytes", NAN, "new_bytes cannot be"),
        ("base", HUGE, "base cannot be"),
        ("aliases", "best", "aliases is a list of names"),  # not four aliases b, e, s, t
        ("tags", "t", "tags is a list of names"),
        ("description", "a\x00b", "NUL"),
    ]
    for field, value, says in cases:
        refused(served, served.post("/api/v1/commit", {**body, field: value}), says)
    assert served.state() == before


# -- whatever the arguments, never a server error ----------------------------------------

# calls left out: those that would lock the admin out, or rewrite the whole store
_LEFT_OUT = {"revoke_token", "disable_user", "upgrade", "rebuild_index"}
_HOSTILE = st.sampled_from(
    [NAN, INF, -INF, HUGE, -HUGE, -1, 0, 2**63, 10**400, "", LONG, "../x", "v3", None, True,
     [], [LONG], {}, {"a": NAN}, {"a": 10**400}, {LONG: 1}, [[[[[[1]]]]]], dt.datetime(1, 1, 1),
     dt.datetime(9999, 12, 31), dt.timedelta(days=-1), dt.timedelta(days=10**8)]
)  # fmt: skip


def _arguments(method: str, served: Served) -> st.SearchStrategy[dict[str, Any]]:
    """For each parameter, a plausible value (so that calls get past the first check) or
    a hostile one."""
    plausible = st.sampled_from(
        [served.version.id, served.run.id, "p", "ds", "latest", "reader", 1, 0.5, "in",
         Ref("p", "ds", "v0"), {"x": 1.0}, ["a.txt"], dt.timedelta(hours=1),
         dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
         served.store.backend.version_by_id(served.version.id)]
    )  # fmt: skip
    names = [n for n in inspect.signature(getattr(GuardedBackend, method)).parameters][1:]
    return st.fixed_dictionaries({name: st.one_of(plausible, _HOSTILE) for name in names})


def test_no_call_answers_with_a_server_error(served: Served) -> None:
    methods = sorted(CALLS - _LEFT_OUT)

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same calls each run: CI gives one answer
    )
    @given(data=st.data())
    def one_call(data: st.DataObject) -> None:
        method = data.draw(st.sampled_from(methods))
        kwargs = data.draw(_arguments(method, served))
        response = served.call(method, **kwargs)
        assert response.status_code < 500, (method, kwargs, response.text)
        if response.status_code >= 400:
            assert response.json()["message"], (method, kwargs)

    one_call()
    assert served.client.get("/readyz").status_code == 200
