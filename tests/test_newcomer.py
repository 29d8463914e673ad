"""A newcomer's first hour: stores found like git, nothing of the store ever logged, ignore
files, repair, honest progress and caches, output that pipes, help that teaches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import forebear

from .conftest import REPO, clean_env, corrupt, format_2, run_cli


def ok(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    done = run_cli(*args, cwd=cwd, env=env)
    assert done.returncode == 0, f"forebear {' '.join(args)}:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def user_error(*args: str, cwd: Path | None = None) -> str:
    done = run_cli(*args, cwd=cwd)
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("forebear: error: "), done.stderr
    return lines[0]


@pytest.fixture
def project(make_tree: Callable[..., Path]) -> Path:
    """A project folder with data in subfolders and a store made by `forebear init`."""
    root = make_tree(
        "project", {"data/raw/a.csv": "x,y\n1,2\n", "data/raw/b.csv": "x,y\n3,4\n", "README": "hi"}
    )
    ok("init", cwd=root)
    return root


# -- 1. store discovery -------------------------------------------------------------------


def test_commands_in_a_subfolder_use_the_store_above(project: Path) -> None:
    ok("log", "raw", "--name", "raw", cwd=project / "data")
    listing = json.loads(ok("ls", "--json", cwd=project / "data" / "raw").stdout)
    assert [v["ref"] for v in listing] == ["raw:v0"]
    assert not (project / "data" / ".forebear").exists()
    assert not (project / "data" / "raw" / ".forebear").exists()
    status = json.loads(ok("status", "--json", cwd=project / "data" / "raw").stdout)
    assert status["path"] == str(project / ".forebear")
    assert status["found_by"] == str(project / ".forebear")
    assert (status["artifacts"], status["versions"], status["runs"]) == (1, 1, 1)
    assert status["cache"]["path"] == str(project / ".forebear" / "cache")


def test_python_finds_the_store_above_too(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "data" / "raw")
    with forebear.init(project="p") as run:
        run.log_artifact(".", name="raw")
    assert forebear.open().artifact("raw").files() == ["a.csv", "b.csv"]
    assert forebear.open().status()["path"] == str(project / ".forebear")
    assert not (project / "data" / "raw" / ".forebear").exists()


def test_the_nearest_store_wins(project: Path, tmp_path: Path) -> None:
    inner = project / "data"
    (inner / "forebear.toml").write_text(f'[store]\nobjects = "{tmp_path / "inner-store"}"\n')
    ok("log", "raw", "--name", "inner", cwd=inner)
    assert (tmp_path / "inner-store" / "forebear.json").exists()
    assert "inner" not in ok("ls", cwd=project).stdout  # the root's own .forebear/


def test_init_with_a_catalog_alone_is_found_from_every_folder_below(
    make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_tree("team", {"data/a.csv": "x\n1\n"})
    catalog = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    ok("init", "--db", catalog, cwd=root)
    assert 'db = "' in (root / "forebear.toml").read_text()
    ok("log", "a.csv", "--name", "a", cwd=root / "data")
    for folder in (root, root / "data"):
        status = json.loads(ok("status", "--json", cwd=folder).stdout)
        assert status["catalog"] == catalog and status["versions"] == 1
        assert status["objects"] == str(root / ".forebear")
        assert status["found_by"] == str(root / "forebear.toml")
    # the toml's catalog is the only one: none was made beside the objects or below
    assert not (root / ".forebear" / "meta.db").exists()
    assert not (root / "data" / ".forebear").exists()
    # a plain init here opens the store the file names instead of making another, whatever
    # the environment names
    again = json.loads(ok("init", "--json", cwd=root, FOREBEAR_DIR=str(tmp_path / "x")).stdout)
    assert (again["db"], again["config"]) == (catalog, str(root / "forebear.toml"))
    assert not (root / ".forebear" / "meta.db").exists()


def test_opening_a_forebear_toml_by_path_takes_only_what_it_and_its_folder_say(
    make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tree("team", {"a.csv": "x\n1\n"})
    catalog = f"sqlite:///{tmp_path / 'team.db'}"
    (root / "forebear.toml").write_text(f'[store]\ndb = "{catalog}"\n')
    monkeypatch.setenv("FOREBEAR_OBJECTS", str(tmp_path / "other-objects"))
    monkeypatch.chdir(tmp_path)
    with forebear.open(root / "forebear.toml") as store:
        assert (store.db_url, store.objects_url) == (catalog, str(root / ".forebear"))


def test_opening_a_project_folder_opens_the_store_inside_it(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("log", "data/raw", "--name", "raw", cwd=project)
    monkeypatch.chdir(tmp_path)
    for given in (project, str(project), project / ".forebear"):  # as git takes a work tree
        with forebear.open(given) as store:
            assert store.artifact("raw").files() == ["a.csv", "b.csv"]
            assert store.status()["path"] == str(project / ".forebear")
    assert sorted(os.listdir(project)) == [".forebear", "README", "data"]  # nothing made
    with forebear.init(project="p", store=project) as run:
        assert run.use_artifact("raw").files() == ["a.csv", "b.csv"]
    empty = tmp_path / "empty"
    with forebear.open(empty) as store:  # a folder with no store: a new one, in it
        assert store.status()["path"] == str(empty)
    team = tmp_path / "team"  # its forebear.toml keeps the catalog beside it: still the toml
    team.mkdir()
    ok("init", "--db", f"sqlite:///{team / 'meta.db'}", "--objects", str(tmp_path / "objs"),
       cwd=team)  # fmt: skip
    (team / ".forebear").mkdir(exist_ok=True)
    with forebear.open(team) as store:
        assert (store.objects_url, store.db_url) == (
            str(tmp_path / "objs"),
            f"sqlite:///{team / 'meta.db'}",
        )


def test_a_forebear_toml_written_beside_a_store_replaces_it(project: Path, tmp_path: Path) -> None:
    ok("log", "data/raw", "--name", "old", cwd=project)
    team_objects = tmp_path / "team-objects"
    ok("init", "--objects", str(team_objects), cwd=project)
    ok("log", "raw", "--name", "new", cwd=project / "data")
    names = [v["name"] for v in json.loads(ok("ls", "--json", cwd=project).stdout)]
    assert names == ["new"]  # what init said: commands here use the store it wrote down
    assert forebear.open(project / ".forebear").artifact("old").files() == ["a.csv", "b.csv"]


@pytest.mark.parametrize(
    "args",
    [("ls",), ("show", "x"), ("runs",), ("status",), ("verify",), ("get", "x", "out"),
     ("lineage", "x"), ("gc",), ("cache",), ("versions", "x"), ("repair",), ("diff", "a", "b")],
)  # fmt: skip
def test_read_only_commands_in_an_empty_tree_make_nothing(
    args: tuple[str, ...], isolated: Path
) -> None:
    line = user_error(*args)
    assert "no forebear store in" in line and "forebear init" in line
    assert list(isolated.iterdir()) == []


def test_a_write_in_an_empty_tree_makes_the_store_here(isolated: Path) -> None:
    (isolated / "f.txt").write_text("data")
    ok("log", "f.txt")
    assert (isolated / ".forebear" / "forebear.json").exists()
    assert "found by" in ok("status").stdout


# -- 2. never log the store; ignore files; special files ----------------------------------


def test_logging_the_folder_that_holds_the_store_leaves_the_store_out(project: Path) -> None:
    ok("log", ".", "--name", "everything", cwd=project)
    ok("log", ".", "--name", "everything", cwd=project)  # and again, with the store written
    files = json.loads(ok("show", "everything", "--json", cwd=project).stdout)["entries"]
    assert sorted(e["path"] for e in files) == ["README", "data/raw/a.csv", "data/raw/b.csv"]


def test_a_store_under_another_name_is_left_out_too(
    make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    folder = make_tree("folder", {"data.txt": "d"})
    ok("--objects", str(folder / "my-store"), "log", str(folder), "--name", "f")
    ok("--objects", str(folder / "my-store"), "log", str(folder), "--name", "f")
    shown = json.loads(ok("--objects", str(folder / "my-store"), "show", "f", "--json").stdout)
    assert [e["path"] for e in shown["entries"]] == ["data.txt"]


@pytest.mark.parametrize("through", [".", "sub/..", "sub/../."])
def test_a_catalog_kept_inside_the_logged_folder_is_refused(
    make_tree: Callable[..., Path], tmp_path: Path, through: str
) -> None:
    folder = make_tree("folder", {"data.txt": "d", "sub/x.txt": "x"})
    args = ["--db", f"sqlite:///{folder / 'catalog.db'}", "--objects", str(tmp_path / "objects")]
    line = user_error(*args, "log", f"{folder}/{through}")
    assert "store's own files" in line and ".forebearignore" in line


def test_forebearignore_files_in_the_folder_its_subfolders_and_its_parents(
    project: Path,
) -> None:
    (project / ".forebearignore").write_text("*.log\n")  # the project root: the top
    raw = project / "data" / "raw"
    (raw / "run.log").write_text("noise")
    (raw / "keep.log").write_text("kept")
    (raw / "scratch").mkdir()
    (raw / "scratch" / "x.tmp").write_text("x")
    (raw / "sub").mkdir()
    (raw / "sub" / "c.csv").write_text("c")
    (raw / "sub" / "c.bak").write_text("c")
    (raw / ".forebearignore").write_text("scratch/\n!keep.log\n")
    (raw / "sub" / ".forebearignore").write_text("*.bak\n")
    ok("log", "data/raw", "--name", "raw", cwd=project)
    shown = json.loads(ok("show", "raw", "--json", cwd=project).stdout)
    assert sorted(e["path"] for e in shown["entries"]) == [
        ".forebearignore", "a.csv", "b.csv", "keep.log", "sub/.forebearignore", "sub/c.csv",
    ]  # fmt: skip


def test_add_dir_takes_ignore_patterns(make_tree: Callable[..., Path]) -> None:
    folder = make_tree("d", {"a.csv": "a", "b.tmp": "b", "cache/c.csv": "c", "deep/cache/d": "d"})
    artifact = forebear.Artifact("d")
    assert artifact.add_dir(folder, ignore=["*.tmp", "cache/"]) == ["a.csv"]
    ok("log", str(folder), "--name", "d2", "--ignore", "*.tmp", "-x", "/cache/")
    shown = json.loads(ok("show", "d2", "--json").stdout)
    assert sorted(e["path"] for e in shown["entries"]) == ["a.csv", "deep/cache/d"]


def test_special_files_are_reported_not_silently_dropped(make_tree: Callable[..., Path]) -> None:
    folder = make_tree("d", {"a.csv": "a"})
    os.mkfifo(folder / "pipe")
    artifact = forebear.Artifact("d")
    with pytest.warns(forebear.ForebearWarning, match=r"skipped 1 special files.*pipe \(FIFO\)"):
        assert artifact.add_dir(folder) == ["a.csv"]
    assert artifact.skipped == [("pipe", "FIFO")]
    done = ok("log", str(folder), "--name", "d")
    assert "forebear: skipped 1 special files with no bytes to store: pipe (FIFO)" in done.stderr


# -- 3. repair ------------------------------------------------------------------------------


def test_repair_restores_lost_objects_from_files_found_by_content(
    loose_store: forebear.Store, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    store = loose_store  # objects lost one by one (a damaged pack: tests/test_packs.py)
    data = make_tree("data", {"a.bin": b"A" * 3000, "b.bin": b"B" * 4000, "c.bin": b"C" * 10})
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(data, name="ds")
    store.objects.delete(version.entry("a.bin").digest or "")
    corrupt(store, version.entry("b.bin").digest or "", b"b" * 4000)
    store.objects.delete(version.digest)  # the manifest object: the catalog rebuilds it
    assert len(store.verify()) == 3
    backup = make_tree("backup", {"renamed/first": b"A" * 3000, "other": b"B" * 4000})
    report = store.repair(source=backup)
    assert set(report.restored) == {
        version.entry("a.bin").digest,
        version.entry("b.bin").digest,
        version.digest,
    }
    assert report.missing == [] and report
    assert store.verify() == []
    # with nothing left to find, what is still missing is said, and the exit code is 1
    store.objects.delete(version.entry("c.bin").digest or "")
    empty = make_tree("empty", {})
    again = store.repair("ds", empty)
    assert [(m.ref, m.path) for m in again.missing] == [("ds:v0", "c.bin")]


def test_repair_from_the_cli(project: Path, tmp_path: Path) -> None:
    ok("log", "data/raw", "--name", "raw", cwd=project)
    with forebear.open(project / ".forebear") as store:
        version = store.artifact("raw")
        corrupt(store, version.entry("a.csv").digest or "", b"damaged!")
    assert run_cli("verify", cwd=project).returncode == 1
    done = ok("repair", "--from", "data", cwd=project)
    assert "restored" in done.stdout and "from" in done.stdout
    ok("verify", cwd=project)
    report = json.loads(ok("repair", "raw", "--json", cwd=project).stdout)
    assert report["missing"] == [] and report["restored"] == {}


def test_repair_restores_a_chunk_of_a_large_file(
    make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    from forebear.chunking import Chunking

    small = Chunking.around(avg_size=16 << 10, threshold=128 << 10)
    data = make_tree("data", {"big.bin": os.urandom(600_000)})
    location = str(format_2(tmp_path / "s"))  # a file a chunk, one of them lost
    with forebear.Store(objects_url=location, chunking=small) as store:
        with forebear.init(project="p", store=store) as run:
            version = run.log_artifact(data, name="big")
        chunks = store.content.chunk_lists(version.iter_entries())[
            version.entry("big.bin").digest or ""
        ]
        store.objects.delete(chunks.digests[3])
        report = store.repair(source=data)
        assert report.missing == [] and chunks.digests[3] in report.restored
        assert store.verify() == []


# -- 4. honest progress; every cached byte counted -------------------------------------------


def test_the_storing_bar_counts_each_byte_once(
    make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib

    from forebear import ingest, progress
    from forebear.chunking import Chunking

    bars: dict[str, list[int]] = {}

    @contextlib.contextmanager
    def recording(description: str, enabled: bool):  # type: ignore[no-untyped-def]
        done, total = [0], [0]

        def tick(n: int) -> None:
            done[0] += n
            assert done[0] <= total[0], f"{description}: past 100 %"

        def expect(n: int) -> None:
            total[0] += n

        yield tick, expect
        bars[description.split()[0]] = [done[0], total[0]]

    monkeypatch.setattr(progress, "growing_bar", recording)
    monkeypatch.setattr(ingest.progress, "growing_bar", recording)
    small = Chunking.around(avg_size=16 << 10, threshold=128 << 10)
    data = make_tree("data", {"big.bin": os.urandom(700_000), "small.txt": "s"})
    with (
        forebear.Store(objects_url=str(tmp_path / "s"), chunking=small) as store,
        forebear.init(project="p", store=store) as run,
    ):
        run.log_artifact(data, name="d")
    assert bars["storing"] == [700_001, 700_001]


def test_the_cache_counts_and_clears_downloaded_versions(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    with forebear.init(project="p", store=local_store) as run:
        version = run.log_artifact(make_tree("d", {"a.bin": b"a" * 5000}), name="d")
    folder = version.download()  # no destination: into the store's cache
    assert folder.is_relative_to(local_store.cache_dir)
    usage = local_store.cache.usage()
    assert (usage.downloads, usage.download_bytes) == (1, 5000)
    assert usage.bytes >= 5000
    args = ["--objects", str(local_store.objects_url), "cache", "--json"]
    shown = json.loads(ok(*args).stdout)
    assert shown["downloads"] == 1 and shown["bytes"] >= 5000
    cleared = json.loads(ok(*args, "--clear").stdout)
    assert cleared["removed_bytes"] >= 5000 and cleared["bytes"] == 0
    assert not folder.exists()


def test_the_cache_bound_covers_downloads(make_tree: Callable[..., Path], tmp_path: Path) -> None:
    with forebear.Store(objects_url=str(tmp_path / "s")) as store:
        with forebear.init(project="p", store=store) as run:
            first = run.log_artifact(make_tree("d1", {"a": b"1" * 8000}), name="one")
            second = run.log_artifact(make_tree("d2", {"b": b"2" * 8000}), name="two")
        # room for one downloaded version beside the stat cache, not for two
        store.cache.max_bytes = store.cache.usage().bytes + 12_000
        one = first.download()
        two = second.download()  # over the bound: the least recently used goes
        assert two.exists() and not one.exists()
        assert first.download() == one  # and comes back, verified, when asked for


# -- 5. output that pipes ------------------------------------------------------------------


def test_piped_tables_keep_full_values_one_row_per_line(make_tree: Callable[..., Path]) -> None:
    data = make_tree("data", {"a.txt": "a"})
    long_name = "a-rather-long-artifact-name-" + "x" * 60
    ok("log", str(data), "--name", long_name, "--alias", "best", "--alias", "production")
    (data / "a.txt").write_text("b")
    ok("log", str(data), "--name", long_name)
    listing = ok("versions", long_name).stdout.splitlines()
    assert len(listing) == 3  # a header and one line per version
    digests = {v["digest"] for v in json.loads(ok("versions", long_name, "--json").stdout)}
    assert all(any(d in line for line in listing) for d in digests)
    assert all(line == line.rstrip() for line in listing)
    assert listing[0].split() == ["version", "aliases", "files", "size", "new", "created", "digest"]
    assert long_name in ok("ls").stdout.splitlines()[1]


def test_a_closed_pipe_ends_quietly(make_tree: Callable[..., Path], isolated: Path) -> None:
    data = make_tree("data", {f"f{i:04d}.txt": str(i) for i in range(2000)})
    ok("log", str(data), "--name", "many")
    done = subprocess.run(
        f"{sys.executable} -m forebear show many --all | head -3",
        shell=True, cwd=isolated, env=clean_env(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.stdout.count("\n") == 3
    assert done.stderr == ""


def test_show_lists_fifty_files_and_says_how_to_see_all(make_tree: Callable[..., Path]) -> None:
    ok("log", str(make_tree("data", {f"f{i:03d}": "x" for i in range(120)})), "--name", "many")
    shown = ok("show", "many").stdout.splitlines()
    assert sum(1 for line in shown if line.startswith("    f")) == 50
    assert "and 70 more" in shown[-1] and "--all" in shown[-1]
    everything = ok("show", "many", "--all").stdout.splitlines()
    assert sum(1 for line in everything if line.startswith("    f")) == 120


def test_logging_the_same_content_says_it_was_unchanged(make_tree: Callable[..., Path]) -> None:
    data = make_tree("data", {"a.txt": "a"})
    assert ok("log", str(data), "--name", "d").stdout.startswith("default/d:v0 (1 files")
    again = ok("log", str(data), "--name", "d").stdout
    assert again.startswith("unchanged: default/d:v0 already holds this content")
    assert json.loads(ok("log", str(data), "--name", "d", "--json").stdout)["unchanged"] is True


# -- 6. help that teaches ----------------------------------------------------------------


def _commands() -> dict[str, object]:
    from forebear.cli import cli

    return dict(cli.commands)


def test_every_command_has_a_whole_summary_options_with_help_and_an_example() -> None:
    top = ok("--help").stdout
    assert "..." not in top.split("Commands:")[1].split("Refs name")[0]
    assert "NAME:ALIAS" in top and "PROJECT/NAME:REF" in top  # the ref syntax, once
    for name, command in _commands().items():
        text = ok(name, "--help").stdout
        assert "Examples:" in text, name
        for param in command.params:  # type: ignore[attr-defined]
            if param.param_type_name == "option" and not param.hidden:
                assert param.help, f"{name} {param.opts} has no help"
    for name in ("show", "get", "lineage"):
        assert "see 'forebear --help'" in " ".join(ok(name, "--help").stdout.split())


def test_docs_cli_page_covers_every_command_and_option() -> None:
    page = (REPO / "docs" / "cli.md").read_text()
    for name, command in _commands().items():
        heading = f"\n### {name}\n"  # the whole heading: "### run" is not "### runs"
        assert heading in page, f"docs/cli.md has no section for {name}"
        section = page.split(heading, 1)[1].split("\n### ", 1)[0]
        for param in command.params:  # type: ignore[attr-defined]
            if param.param_type_name == "option" and not param.hidden:
                assert any(opt in section for opt in param.opts), f"{name} {param.opts}"


def test_global_options_work_after_the_command(
    make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_tree("data", {"a.txt": "a"})
    ok("log", str(data), "--name", "d", "--objects", str(tmp_path / "elsewhere"))
    assert "d" in ok("ls", "--objects", str(tmp_path / "elsewhere")).stdout
    assert not (tmp_path / "work" / ".forebear").exists()


def test_ls_says_what_does_not_exist(make_tree: Callable[..., Path]) -> None:
    ok("log", str(make_tree("data", {"a.txt": "a"})), "--name", "d", "--type", "model")
    assert "no artifact of type 'modle' (types here: model)" in ok("ls", "--type", "modle").stdout
    assert "no project 'nope' has artifacts" in ok("ls", "--project", "nope").stdout


def test_a_file_is_named_after_all_but_its_last_suffix(isolated: Path) -> None:
    (isolated / "my.model.v2.pkl").write_bytes(b"weights")
    assert ok("log", "my.model.v2.pkl").stdout.startswith("default/my.model.v2:v0")


# -- 7. the CLI and the web UI agree -----------------------------------------------------


def test_cli_and_ui_order_runs_and_mark_changes_alike(
    local_store: forebear.Store, make_tree: Callable[..., Path]
) -> None:
    from starlette.testclient import TestClient

    from forebear.web.app import create_app

    data = make_tree("data", {"a.txt": "a", "gone.txt": "g"})
    for name in ("first", "second", "third"):
        with forebear.init(project="p", name=name, store=local_store) as run:
            run.log_artifact(data, name="d")
        (data / "a.txt").write_text(name)
    (data / "gone.txt").unlink()
    (data / "new.txt").write_text("n")
    with forebear.init(project="p", name="fourth", store=local_store) as run:
        run.log_artifact(data, name="d")
    objects = ["--objects", str(local_store.objects_url)]
    cli_runs = [r["id"] for r in json.loads(ok(*objects, "runs", "--json").stdout)]
    with TestClient(create_app(local_store), base_url="http://127.0.0.1") as client:
        ui_runs = [r["id"] for r in client.get("/api/runs").json()["runs"]]
        page = client.get("/artifacts/p/d/v3", params={"diff": "v0"}).text
    assert cli_runs == ui_runs
    assert [r.name for r in local_store.runs()][-1] == "fourth"
    assert local_store.run(cli_runs[0]).name == "fourth"  # newest first in both
    diff = ok(*objects, "diff", "d:v0", "d:v3").stdout.splitlines()
    assert diff == ["+ new.txt", "- gone.txt", "M a.txt"]
    for line in diff:
        assert f"{line[0]} {line[2:]}" in page


def test_progress_off_when_not_a_terminal() -> None:
    # a sanity check of the switch the docs name
    from forebear import progress

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert progress.wanted(None) is False  # FOREBEAR_NO_PROGRESS is set by the fixture
