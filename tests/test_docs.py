"""The docs are checked against the code: every public name is documented in
docs/python-api.md, and the Python examples that stand on their own run as written.

An example stands on its own when its block starts with an import; other blocks are
signatures or fragments that continue one. A page's examples run in order, in one script,
in a folder holding what the docs talk about: the quickstart's files and store, and an
"iris" project with a dataset and a model made from it. (docs/cli.md is checked in
test_newcomer.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import forebear

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
API_PAGE = DOCS / "python-api.md"
DOCUMENTED_CLASSES = (
    forebear.Store,
    forebear.Run,
    forebear.ArtifactVersion,
    forebear.Artifact,
    forebear.Lineage,
    forebear.Manifest,
    forebear.ManifestEntry,
    forebear.Diff,
)


def test_every_exported_name_is_documented() -> None:
    page = API_PAGE.read_text()
    missing = [name for name in forebear.__all__ if f"`{name}" not in page]
    # the errors have their own page, linked from the API page
    errors_page = (DOCS / "reference" / "errors.md").read_text()
    assert [n for n in missing if not re.search(rf"\b{n}\b", errors_page)] == []


@pytest.mark.parametrize("cls", DOCUMENTED_CLASSES, ids=lambda c: c.__name__)
def test_every_public_method_and_attribute_is_documented(cls: type) -> None:
    page = API_PAGE.read_text()
    names = {name for name in dir(cls) if not name.startswith("_")}
    missing = sorted(n for n in names if not re.search(rf"[`.]{re.escape(n)}\b", page))
    assert missing == [], f"{cls.__name__}: document {missing} in docs/python-api.md"


def examples(page: Path) -> list[tuple[int, str]]:
    """The page's self-contained Python examples, with the line each starts on."""
    text = page.read_text()
    found = []
    for match in re.finditer(r"```python\n(.*?)```", text, re.S):
        code = match.group(1)
        if code.lstrip().startswith(("import ", "from ")):
            found.append((text[: match.start()].count("\n") + 2, code))
    return found


PAGES = sorted(p for p in DOCS.rglob("*.md") if examples(p))
QUICKSTART = DOCS / "quickstart.md"

IRIS = textwrap.dedent(
    """
    from pathlib import Path
    import forebear

    Path("iris").mkdir()
    Path("iris/iris.csv").write_text("sepal_length,species\\n5.1,setosa\\n")
    with forebear.init(project="iris", name="prepare") as run:
        run.log_artifact("iris", name="iris-raw", type="dataset")
    with forebear.init(project="iris", name="train", config={"n_estimators": 100}) as run:
        run.use_artifact("iris-raw:latest").download()
        Path("model.pkl").write_bytes(b"a model")
        run.log_artifact("model.pkl", name="iris-rf", type="model", aliases=["best"])
    """
)


def run_python(code: str, where: Path, what: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREBEAR_")}
    env["FOREBEAR_NO_PROGRESS"] = "1"
    env["FOREBEAR_PROJECT"] = "demo"  # the quickstart's project, as its reader would set
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=where, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{what} failed:\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as a reader of the docs has it: the quickstart done, an iris project."""
    folder = tmp_path_factory.mktemp("docs-world")
    raw = folder / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (raw / "test.csv").write_text("x,y\n5,6\n")
    for line, code in examples(QUICKSTART):
        run_python(code, folder, f"docs/quickstart.md line {line}")
    run_python(IRIS, folder, "the iris project")
    return folder


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_python_examples_run(page: Path, world: Path, tmp_path: Path) -> None:
    where = tmp_path / "reader"
    shutil.copytree(world, where, symlinks=True)
    script = "\n".join(code for _, code in examples(page))
    lines = ", ".join(str(line) for line, _ in examples(page))
    run_python(script, where, f"the examples of docs/{page.relative_to(DOCS)} (lines {lines})")
