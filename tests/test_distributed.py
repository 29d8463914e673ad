"""Several processes build one version (W&B's ``upsert_artifact`` / ``finish_artifact``):
nothing visible before the finish, every contributor a producer after it, gc keeps the
parts meanwhile, and one clear error for a reused id, a path claimed twice, or parts that
were abandoned; on SQLite + a folder and on PostgreSQL + S3, and from a Dask cluster."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import forebear

from .conftest import clean_env


def shard(store: forebear.Store, folder: Path, i: int, distributed_id: str = "job") -> str:
    path = folder / f"shard-{i}.csv"
    path.write_text(f"rows of shard {i}\n")
    with forebear.init(project="p", name=f"worker-{i}", store=store) as run:
        part = forebear.Artifact("shards", type="dataset")
        part.add_file(path, f"shards/{i}.csv")
        run.upsert_artifact(part, distributed_id=distributed_id)
        return run.id


def test_parts_become_one_version_only_at_the_finish(store: forebear.Store, tmp_path: Path) -> None:
    workers = [shard(store, tmp_path, i) for i in range(3)]
    assert store.artifacts() == []
    with pytest.raises(forebear.ArtifactNotFound):
        store.artifact("shards")
    store.gc(grace=dt.timedelta(0))  # parts in the making are kept
    with forebear.init(project="p", name="coordinator", store=store) as run:
        own = forebear.Artifact("shards", type="dataset", description="all shards")
        (tmp_path / "index.txt").write_text("3 shards")
        own.add_file(tmp_path / "index.txt")
        version = run.finish_artifact(own, distributed_id="job", aliases=["full"])
    assert own.wait().qualified_ref == version.qualified_ref == "p/shards:v0"  # as W&B's
    assert version.files() == ["index.txt", "shards/0.csv", "shards/1.csv", "shards/2.csv"]
    assert version.aliases == ["latest", "full"] and version.description == "all shards"
    assert {r.id for r in version.producers} == {*workers, run.id}
    assert version.open("shards/1.csv").read() == b"rows of shard 1\n"
    assert store.verify() == []


def test_mistakes_get_one_clear_error(store: forebear.Store, tmp_path: Path) -> None:
    shard(store, tmp_path, 0)
    with forebear.init(project="p", name="coordinator", store=store) as run:
        run.finish_artifact(forebear.Artifact("shards", type="dataset"), distributed_id="job")
        with pytest.raises(forebear.InvalidInput, match="finished already"):
            run.finish_artifact(forebear.Artifact("shards", type="dataset"), distributed_id="job")
        with pytest.raises(forebear.InvalidInput, match="no parts"):
            run.finish_artifact(forebear.Artifact("other"), distributed_id="job")
        with pytest.raises(forebear.InvalidInput, match="distributed_id must be"):
            run.upsert_artifact(forebear.Artifact("shards"), distributed_id="")
    with pytest.raises(forebear.InvalidInput, match="finished already"):
        shard(store, tmp_path, 1)  # the id was used up by the finish
    shard(store, tmp_path, 1, "job-2")
    (tmp_path / "shard-1.csv").write_text("other bytes")
    with forebear.init(project="p", name="late", store=store) as run:
        clash = forebear.Artifact("shards", type="dataset")
        clash.add_file(tmp_path / "shard-1.csv", "shards/1.csv")
        with pytest.raises(forebear.InvalidInput, match="already with other content"):
            run.upsert_artifact(clash, distributed_id="job-2")


def test_abandoned_parts_are_collected_and_the_finish_refused(
    store: forebear.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREBEAR_DISTRIBUTED_HOLD_SECONDS", "0.001")  # held a millisecond
    shard(store, tmp_path, 0)
    removed = store.gc(grace=dt.timedelta(0))
    assert len(removed.objects) >= 1  # the part's objects went
    with (
        forebear.init(project="p", name="coordinator", store=store) as run,
        pytest.raises(forebear.StoreError, match="abandoned"),
    ):
        run.finish_artifact(forebear.Artifact("shards", type="dataset"), distributed_id="job")
    assert store.artifacts() == []


DASK_SCRIPT = """
import forebear
from pathlib import Path
from dask.distributed import Client, LocalCluster

def write_shard(i):
    path = Path(f"shard-{i}.csv")
    path.write_text(f"rows of shard {i}\\n")
    with forebear.init(project="p", name=f"worker-{i}", store=forebear.open(STORE)) as run:
        part = forebear.Artifact("shards", type="dataset")
        part.add_file(path, f"shards/{i}.csv")
        run.upsert_artifact(part, distributed_id="dask-job")
    return i

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            client.gather(client.map(write_shard, range(6)))
    store = forebear.open(STORE)
    with forebear.init(project="p", name="coordinator", store=store) as run:
        version = run.finish_artifact(forebear.Artifact("shards", type="dataset"),
                                      distributed_id="dask-job")
    print(len(version.files()), len(version.producers))
"""


@pytest.mark.slow
def test_a_dask_cluster_logs_one_dataset_from_several_workers(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(f"STORE = {str(tmp_path / 'store')!r}\n" + DASK_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=clean_env(),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["6", "7"]  # six shards, six workers' runs and the finisher
