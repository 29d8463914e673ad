"""The `forebear` command as a user runs it: real subprocesses, real exit codes and output.

Setup that is not itself under test (lineage chains, orphan objects) goes through the Python
API on the same store, so each test spends its subprocess calls on the commands it checks.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import forebear

from .conftest import clean_env, corrupt, format_2, run_cli

STORE_DIR = ".forebear"


def ok(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the command and insist it succeeded without a traceback."""
    done = run_cli(*args, **kwargs)
    assert done.returncode == 0, f"forebear {' '.join(args)} failed:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def ok_json(*args: str, **kwargs: Any) -> Any:
    return json.loads(ok(*args, "--json", **kwargs).stdout)


def assert_user_error(done: subprocess.CompletedProcess[str]) -> str:
    """A user mistake: non-zero exit, exactly one `forebear: error:` line, no traceback.
    Returns that line."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "Traceback" not in done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{done.stderr}"
    assert lines[0].startswith("forebear: error: ")
    return lines[0]


@pytest.fixture
def data(make_tree: Callable[..., Path]) -> Path:
    return make_tree("data", {"a.txt": "alpha\n", "b.txt": "bravo\n", "sub/c.txt": "charlie\n"})


# -- help ---------------------------------------------------------------------------------


def test_no_arguments_prints_help_and_exits_zero() -> None:
    done = run_cli()
    assert done.returncode == 0
    assert done.stderr == ""
    assert "Usage: forebear" in done.stdout
    for command in ("init", "log", "ls", "show", "versions", "get", "lineage", "verify", "gc"):
        assert command in done.stdout


# -- logging, listing, showing ------------------------------------------------------------


def test_init_log_ls_and_show(isolated: Path, data: Path, tmp_path: Path) -> None:
    done = ok("init")
    assert STORE_DIR in done.stdout
    assert (isolated / STORE_DIR / "forebear.json").is_file()

    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(b"\x80\x04weights")

    done = ok(
        "log",
        str(data),
        "--name",
        "iris-raw",
        "--type",
        "dataset",
        "--alias",
        "best",
        "--metadata",
        "rows=150",
        "--metadata",
        "source=uci",
        "--description",
        "raw iris measurements",
    )
    assert "default/iris-raw:v0" in done.stdout
    assert "best" in done.stdout
    ok("log", str(model_file), "--name", "iris-rf", "--type", "model")

    text = ok("ls").stdout
    assert "iris-raw" in text
    assert "iris-rf" in text
    models = ok_json("ls", "--type", "model")
    assert [(v["name"], v["type"], v["version"]) for v in models] == [("iris-rf", "model", "v0")]

    shown = ok_json("show", "iris-raw")
    assert shown["ref"] == "iris-raw:v0"
    assert shown["project"] == "default"
    assert shown["type"] == "dataset"
    assert shown["description"] == "raw iris measurements"
    # values are parsed as JSON when they can be, else kept as text
    assert shown["metadata"] == {"rows": 150, "source": "uci"}
    assert set(shown["aliases"]) == {"latest", "best"}
    assert [e["path"] for e in shown["entries"]] == ["a.txt", "b.txt", "sub/c.txt"]
    assert [e["size"] for e in shown["entries"]] == [6, 6, 8]
    assert [r["name"] for r in shown["producers"]] == ["forebear log"]
    assert shown["producers"][0]["status"] == "finished"
    assert shown["consumers"] == []

    text = ok("show", "iris-raw:best").stdout
    assert "default/iris-raw:v0" in text
    assert "raw iris measurements" in text
    assert "sub/c.txt" in text
    assert "forebear log" in text


def test_versions_diff_and_dedup(data: Path) -> None:
    ok("log", str(data), "--name", "ds")
    (data / "a.txt").write_text("alpha, revised\n")
    (data / "b.txt").unlink()
    (data / "d.txt").write_text("delta\n")
    assert "default/ds:v1" in ok("log", str(data), "--name", "ds").stdout
    # the same content again makes no new version
    assert "default/ds:v1" in ok("log", str(data), "--name", "ds").stdout

    found = ok_json("versions", "ds")
    assert [v["version"] for v in found] == ["v0", "v1"]
    assert found[0]["digest"] != found[1]["digest"]
    assert "latest" in found[1]["aliases"]
    assert "latest" not in found[0]["aliases"]

    forward = ok_json("diff", "ds:v0", "ds:v1")
    assert forward["from"] == "ds:v0"
    assert forward["to"] == "ds:v1"
    assert forward["added"] == ["d.txt"]
    assert forward["removed"] == ["b.txt"]
    assert forward["modified"] == ["a.txt"]

    # the text form reads the same way, and `ds` means ds:latest
    lines = ok("diff", "ds", "ds:v0").stdout.splitlines()
    assert sorted(lines) == ["+ b.txt", "- d.txt", "M a.txt"]


def test_get_puts_entries_directly_under_dest_and_repairs_them(data: Path, tmp_path: Path) -> None:
    ok("log", str(data), "--name", "ds")
    dest = tmp_path / "dest"
    done = ok("get", "ds:v0", str(dest))
    assert Path(done.stdout.strip()) == dest.resolve()
    assert sorted(os.listdir(dest)) == ["a.txt", "b.txt", "sub"]
    assert (dest / "a.txt").read_text() == "alpha\n"
    assert (dest / "sub" / "c.txt").read_text() == "charlie\n"

    # a tampered copy of the same size is detected and replaced (never trust size alone)
    (dest / "a.txt").write_text("ALPHA\n")
    (dest / "b.txt").unlink()
    ok("get", "ds", str(dest))
    assert (dest / "a.txt").read_text() == "alpha\n"
    assert (dest / "b.txt").read_text() == "bravo\n"


def test_alias_set_move_and_remove(data: Path) -> None:
    with forebear.open(STORE_DIR) as store, forebear.init(name="setup", store=store) as run:
        run.log_artifact(data, name="ds")
        (data / "a.txt").write_text("changed\n")
        run.log_artifact(data, name="ds")

    done = ok("alias", "ds:v0", "production")
    assert "production" in done.stdout
    assert "ds:v0" in done.stdout
    assert ok_json("show", "ds:production")["version"] == "v0"

    ok("alias", "ds:v1", "production")  # an alias is on one version at a time
    aliases = {v["version"]: set(v["aliases"]) for v in ok_json("versions", "ds")}
    assert aliases == {"v0": set(), "v1": {"latest", "production"}}

    ok("alias", "ds:v1", "production", "--remove")
    line = assert_user_error(run_cli("show", "ds:production"))
    assert "production" in line


def test_lineage_text_diagrams_and_json(isolated: Path, data: Path, tmp_path: Path) -> None:
    with forebear.open(STORE_DIR) as store:
        with forebear.init(name="ingest", store=store) as run:
            run.log_artifact(data, name="raw", type="dataset")
        with forebear.init(name="prepare", store=store) as run:
            run.use_artifact("raw")
            clean = tmp_path / "clean.csv"
            clean.write_text("1,2,3\n")
            run.log_artifact(clean, name="clean", type="dataset")
        with forebear.init(name="train", store=store) as run:
            run.use_artifact("clean")
            model = tmp_path / "model.bin"
            model.write_bytes(b"model")
            run.log_artifact(model, name="model", type="model", aliases=["best"])

    text = ok("lineage", "model").stdout
    lines = text.splitlines()
    assert lines[0].startswith("model:v0")
    assert "best" in lines[0]
    for expected in ("run train", "clean:v0", "run prepare", "raw:v0", "run ingest"):
        assert expected in text
    # an indented tree: each hop further up is indented deeper
    indent = {
        key: next(len(ln) - len(ln.lstrip(" │├└─")) for ln in lines if key in ln)
        for key in ("run train", "clean:v0", "run prepare", "raw:v0")
    }
    assert indent["run train"] < indent["clean:v0"] < indent["run prepare"] < indent["raw:v0"]

    graph = json.loads(ok("lineage", "raw", "--down", "--json").stdout)
    refs = {n.get("ref") for n in graph["nodes"] if n["kind"] == "version"}
    assert refs == {"raw:v0", "clean:v0", "model:v0"}
    runs = {n["name"] for n in graph["nodes"] if n["kind"] == "run"}
    assert runs == {"prepare", "train"}

    near = json.loads(ok("lineage", "model", "--depth", "1", "--json").stdout)
    near_refs = {n.get("ref") for n in near["nodes"] if n["kind"] == "version"}
    assert near_refs == {"model:v0", "clean:v0"}

    done = ok("lineage", "model", "-o", "graph.svg")
    assert "graph.svg" in done.stdout
    svg = (isolated / "graph.svg").read_text()
    assert "<svg" in svg
    assert "model:v0" in svg

    ok("lineage", "model", "-o", "graph.mmd")
    mermaid = (isolated / "graph.mmd").read_text()
    assert mermaid.startswith("flowchart")
    assert "clean:v0" in mermaid
    assert "-->" in mermaid

    consumers = ok_json("show", "raw")["consumers"]
    assert [r["name"] for r in consumers] == ["prepare"]


def test_runs_and_run_show_captured_context(data: Path) -> None:
    ok("log", str(data), "--name", "ds")
    runs = ok_json("runs")
    assert len(runs) == 1
    assert runs[0]["name"] == "forebear log"
    assert runs[0]["status"] == "finished"
    assert runs[0]["project"] == "default"
    run_id = runs[0]["id"]
    assert len(run_id) == 8

    shown = ok_json("run", run_id)
    assert shown["id"] == run_id
    assert shown["outputs"] == ["ds:v0"]
    assert shown["inputs"] == []
    context = shown["context"]
    assert context["python"] == platform.python_version()
    assert context["host"] == socket.gethostname()
    assert "log" in context["argv"]
    assert str(data) in context["argv"]

    (data / "a.txt").write_text("changed")
    ok("log", str(data), "--name", "ds")
    newest = ok_json("runs", "-n", "1")
    assert [r["id"] for r in newest] == [r["id"] for r in ok_json("runs")][:1] != [run_id]
    assert ok_json("runs", "--limit", "0") == [] and ok("runs", "-n", "1").stdout.count("\n") == 2
    assert "-1" in assert_user_error(run_cli("runs", "-n", "-1"))


def test_verify_reports_a_corrupted_object(isolated: Path, data: Path, tmp_path: Path) -> None:
    ok("log", str(data), "--name", "ds")
    done = ok("verify")
    assert "verified" in done.stdout

    with forebear.open(STORE_DIR) as store:
        digest = store.artifact("ds").entry("b.txt").digest
        assert digest is not None
        corrupt(store, digest, b"BRAVO\n")

    done = run_cli("verify")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "b.txt" in done.stderr
    assert "a.txt" not in done.stderr
    assert "corrupt" in done.stderr

    done = run_cli("verify", "ds", "--json")
    assert done.returncode == 1
    problems = json.loads(done.stdout)
    assert [(p["ref"], p["path"]) for p in problems] == [("ds:v0", "b.txt")]

    # the corrupted bytes are never handed over
    dest = tmp_path / "dest"
    line = assert_user_error(run_cli("get", "ds", str(dest)))
    assert "b.txt" in line
    assert not (dest / "b.txt").exists()


def test_gc_dry_run_then_delete(isolated: Path, data: Path, tmp_path: Path) -> None:
    # a store of loose objects, whose orphan is a file of its own (packs: test_packs.py)
    with forebear.open(format_2(isolated / STORE_DIR)) as store:
        with forebear.init(name="setup", store=store) as run:
            run.log_artifact(data, name="ds")
        orphan = store.objects.put_bytes(b"left behind by a crashed writer")
        orphan_path = Path(store.objects.path_of(orphan))
    assert orphan_path.exists()

    young = ok("gc", "--dry-run")  # the orphan is younger than the default grace period
    assert "would remove 0" in young.stdout
    assert "kept 1 younger than 1 week" in young.stdout
    done = ok("gc", "--dry-run", "--grace", "0")
    assert "would remove 1" in done.stdout
    assert orphan_path.exists()
    report = ok_json("gc", "--dry-run", "--grace", "0")
    assert (report["dry_run"], report["objects"], report["kept_young"]) == (True, [orphan], 0)
    assert report["bytes"] == len(b"left behind by a crashed writer")
    assert orphan_path.exists()

    report = ok_json("gc", "--grace", "0s")
    assert (report["dry_run"], report["objects"]) == (False, [orphan])
    assert not orphan_path.exists()
    # what versions reference is kept
    dest = tmp_path / "dest"
    ok("get", "ds", str(dest))
    assert (dest / "sub" / "c.txt").read_text() == "charlie\n"


# -- user mistakes --------------------------------------------------------------------------

MISTAKES = [
    pytest.param(["show", "nope"], "nope", id="unknown-ref"),
    pytest.param(["show", "ds:v9"], "v9", id="unknown-version"),
    pytest.param(["get", "ds:v9", "out"], "v9", id="get-unknown-version"),
    pytest.param(["show", "a:b:c"], "a:b:c", id="bad-ref"),
    pytest.param(["versions", "nope"], "nope", id="versions-unknown"),
    pytest.param(["diff", "ds:v0", "nope:v0"], "nope", id="diff-unknown"),
    pytest.param(["log", "{data}", "--name", "../x"], "../x", id="name-traversal"),
    pytest.param(["log", "{data}", "--name", "-bad"], "-bad", id="name-dash"),
    pytest.param(["log", "{data}", "--name", "ds", "--alias", "v3"], "v3", id="log-alias-v3"),
    pytest.param(["alias", "ds:v0", "v3"], "v3", id="alias-looks-like-version"),
    pytest.param(["log", "no/such/path", "--name", "x"], "no/such/path", id="missing-path"),
    pytest.param(["log", "{data}", "--name", "ds", "--metadata", "novalue"], "novalue", id="meta"),
    pytest.param(["frobnicate"], "frobnicate", id="unknown-command"),
    pytest.param(["ls", "--bogus"], "--bogus", id="unknown-option"),
    pytest.param(["run", "zzzzzzzz"], "zzzzzzzz", id="unknown-run"),
    pytest.param(["lineage", "ds", "-o", "graph.bogus"], ".bogus", id="unknown-diagram-format"),
]


@pytest.mark.parametrize(("args", "named"), MISTAKES)
def test_user_mistake_is_one_line_on_stderr(
    args: list[str], named: str, data: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "z.txt").write_text("zulu\n")
    with forebear.open(STORE_DIR) as store, forebear.init(name="setup", store=store) as run:
        run.log_artifact(data, name="ds")

    argv = [a.replace("{data}", str(other)) for a in args]
    done = run_cli(*argv)
    line = assert_user_error(done)
    assert named in line
    assert done.stdout == ""

    # a refused command changed nothing
    with forebear.open(STORE_DIR) as store:
        assert [v.ref for v in store.artifacts()] == ["ds:v0"]
        assert store.artifact("ds").aliases == ["latest"]


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["ls", "--bogus"], "see 'forebear ls --help'"),
        (["token", "create", "alice"], "see 'forebear token create --help'"),
        (["webhook", "add", "--bogus"], "see 'forebear webhook add --help'"),
        (["frobnicate"], "see 'forebear --help'"),
    ],
)
def test_a_usage_mistake_points_at_the_help_of_the_command_given(
    args: list[str], hint: str
) -> None:
    line = assert_user_error(run_cli(*args))
    assert line.endswith(f"({hint})")


# -- names from other people -------------------------------------------------------------

# File names a dataset may hold that a terminal would act on: an OSC sequence retitling the
# window, a colour, a line of its own, text reversed by a bidirectional override.
HOSTILE_NAMES = [
    "title\x1b]0;owned\x07.txt", "red\x1b[31m.txt", "two\nlines.txt", "rtl\u202etxt.exe"
]  # fmt: skip


def on_a_terminal(*args: str) -> str:
    """What the command prints when its output is a terminal (a pseudo-terminal here)."""
    import pty

    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "forebear", *args],
        env=clean_env(COLUMNS="200"), stdout=follower, stderr=follower, stdin=subprocess.DEVNULL,
    ) as process:  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 0, b"".join(chunks)
    os.close(leader)
    return b"".join(chunks).decode()


def test_names_from_a_dataset_never_steer_the_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name in HOSTILE_NAMES:
        (folder / name).write_text("x")
    os.mkfifo(folder / "fifo\x1b[2J")  # skipped, and named in a warning
    logged = ok("log", str(folder), "--name", "names")
    ok("log", str(folder / HOSTILE_NAMES[0]), "--name", "names")
    with forebear.init(name="[bold]run\x1b]0;owned\x07", store=forebear.open(STORE_DIR)):
        pass

    printed = [logged.stdout + logged.stderr]
    for args in (["show", "names:v0"], ["diff", "names:v0", "names:v1"], ["runs"], ["ls"]):
        printed.append(ok(*args).stdout)
        printed.append(on_a_terminal(*args))
    for text in printed:
        assert "\x1b]" not in text and "\x1b[31m" not in text and "\x1b[2J" not in text
        assert "\u202e" not in text and "\x07" not in text
    shown, diff = printed[1], printed[3]
    assert "title\\x1b]0;owned\\x07.txt" in shown and "two\\x0alines.txt" in shown
    assert "rtl\\u202etxt.exe" in shown and "red\\x1b[31m.txt" in shown
    assert "- two\\x0alines.txt" in diff.splitlines()  # one line per file
    assert "fifo\\x1b[2J (FIFO)" in printed[0]
    # a run's name, piped and in the table drawn on a terminal (not read as rich's markup)
    assert "[bold]run\\x1b]0;owned\\x07" in printed[5]
    assert "[bold]run\\x1b]0;owned\\x07" in printed[6]


# -- choosing the store -------------------------------------------------------------------


def test_global_options_and_env_select_the_store(
    isolated: Path, data: Path, tmp_path: Path
) -> None:
    store_a = tmp_path / "store-a"
    store_b = tmp_path / "store-b"
    select_a = ["--db", f"sqlite:///{store_a / 'catalog.db'}", "--objects", str(store_a)]

    ok(*select_a, "log", str(data), "--name", "only-a")
    assert (store_a / "catalog.db").is_file()
    assert (store_a / "forebear.json").is_file()
    assert any((store_a / "packs").iterdir())

    ok("log", str(data), "--name", "only-b", env={"FOREBEAR_DIR": str(store_b)})
    assert (store_b / "meta.db").is_file()

    assert [v["name"] for v in ok_json(*select_a, "ls")] == ["only-a"]
    assert [v["name"] for v in ok_json("ls", env={"FOREBEAR_DIR": str(store_b)})] == ["only-b"]
    env_a = {"FOREBEAR_DB": f"sqlite:///{store_a / 'catalog.db'}", "FOREBEAR_OBJECTS": str(store_a)}
    assert [v["name"] for v in ok_json("ls", env=env_a)] == ["only-a"]
    # there is no store in the working folder: a read-only command says so, makes none
    line = assert_user_error(run_cli("ls"))
    assert "no forebear store in" in line and "forebear init" in line
    assert not (isolated / ".forebear").exists()
    with forebear.open(store_b) as store:
        assert [v.name for v in store.artifacts()] == ["only-b"]


def test_a_program_calling_main_keeps_its_garbage_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the `forebear` program's log leaves the collector off and ends without taking the
    # interpreter apart; a program that calls main() goes on afterwards, as it was
    import gc

    from forebear.cli.app import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    assert gc.isenabled()
    main(["log", "data", "--name", "ds"])
    assert gc.isenabled()
    with forebear.open(tmp_path / ".forebear") as store:
        assert store.artifact("ds").file_count == 1


def test_the_log_program_ends_only_after_its_webhooks_are_sent(tmp_path: Path) -> None:
    from .receiving import Receiver
    from .test_registry import SECRET

    receiver = Receiver()
    try:
        with forebear.open(tmp_path / ".forebear") as store:
            store.add_webhook(receiver.url, events=["version.logged"], secret=SECRET)
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "a.txt").write_text("a")
        done = run_cli("log", "data", "--name", "ds", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "ds:v0" in done.stdout  # its output, flushed before it ended
        assert [e["event"] for e in receiver.events()] == ["version.logged"]
        with forebear.open(tmp_path / ".forebear") as store:
            (sent,) = store.webhook_deliveries()
            assert sent.delivered_at is not None
    finally:
        receiver.close()
