"""Packs (storage format 3: a new store, or one after `forebear upgrade`): small files,
chunks and manifests are stored in a few pack files; every feature reads them, every
object is checked on its own, and gc, purge, repair and rebuild-index keep the store's
promises."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import random
import re
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import forebear
from forebear.chunking import Chunking, ChunkList
from forebear.hashing import hash_bytes
from forebear.objects import ObjectLocation
from forebear.objects.packs import PackSlot, runs_in_packs

from .conftest import cli_ok, format_2, open_store, python_in_own_mounts, run_cli
from .serving import ForebearServer

pytestmark = pytest.mark.filterwarnings("ignore::forebear.ForebearWarning")

SMALL_CHUNKS = Chunking.around(avg_size=16 << 10, threshold=128 << 10)


@pytest.fixture(params=["local", "team", "server"])
def packed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[forebear.Store]:
    """A store in format 3, on each backend (through a server: the server's store)."""
    store = open_store(request, tmp_path)
    assert store.upgrade() == 3
    yield store
    store.close()


def tree(root: Path, count: int, *, big: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"f{i:04d}.txt").write_bytes(f"file {i} ".encode() * (i % 7 + 1))
    if big:
        (root / "big.bin").write_bytes(os.urandom(big))
    return root


def location(store: forebear.Store) -> ObjectLocation:
    """The object location itself, as the store (or its server) now sees it."""
    server = getattr(store, "server", None)
    if server is None:
        return store.objects
    return forebear.Store(server.db_url, server.objects_url).objects  # opened after upgrade


def pack_files(store: forebear.Store) -> list[str]:
    return sorted(stored.digest for stored in location(store).iter_packs())


def loose_objects(store: forebear.Store) -> list[str]:
    return sorted(location(store).iter_digests())


def test_many_small_files_go_into_one_pack_and_read_back(
    packed: forebear.Store, tmp_path: Path
) -> None:
    data = tree(tmp_path / "data", 300, big=3_000_000)  # big.bin: about 45 chunks
    with forebear.init(project="p", store=packed) as run:
        version = run.log_artifact(data, name="ds")
    small = {e.digest for e in version.iter_entries() if e.path != "big.bin"}
    assert location(packed).packed(small | {version.digest}).keys() == small | {version.digest}
    # and the chunks of big.bin; through a server each bundle a client sent is checked and
    # written as a pack of its own before the server answers (the files, then the manifest)
    assert len(pack_files(packed)) == (1 if getattr(packed, "server", None) is None else 2)
    # through a server the clients' uploads arrive loose; gc removes those copies
    packed.gc(grace=dt.timedelta(0))
    assert loose_objects(packed) == []
    out = version.download(tmp_path / "out")
    for path in data.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes()
    with version.open("f0042.txt") as f:
        f.seek(5)
        assert f.read(2) == b"42"
    assert packed.verify() == []


def test_packs_written_during_a_log_are_found_before_they_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packs are recorded in the index together, at the flush before the commit: until
    then the log still finds the objects it packed (a file met again in a later batch is
    not stored twice), nothing names a pack that is not whole, and every pack is recorded
    by the time the version is committed."""
    from forebear import ingest
    from forebear.objects import packs as packs_module

    monkeypatch.setattr(ingest, "BATCH", 10)  # the same bytes come back batches later
    monkeypatch.setattr(packs_module, "REMEMBERED_SLOTS", 1)  # and are no longer remembered
    data = tmp_path / "data"
    data.mkdir()
    for i in range(60):
        (data / f"f{i:02d}.txt").write_bytes(f"content {i % 20} ".encode() * 50)
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    packs = store.objects.packs
    assert packs is not None
    packs.target = 2_000  # a pack every few objects
    recorded: list[int] = []
    real = packs.index.record_many
    monkeypatch.setattr(
        packs.index, "record_many", lambda written: recorded.append(len(written)) or real(written)
    )
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(data, name="ds")
    assert recorded == [len(pack_files(store))] and recorded[0] > 3  # in one transaction
    with sqlite3.connect(tmp_path / "store" / "meta.db") as db:
        rows = db.execute("SELECT digest FROM packed_objects").fetchall()
    assert len(rows) == len({digest for (digest,) in rows}) == 21  # 20 files, 1 manifest
    assert store.objects.packs.unrecorded == []
    assert store.verify() == []
    out = version.download(tmp_path / "out")
    assert sorted(p.read_bytes() for p in out.iterdir()) == sorted(
        p.read_bytes() for p in data.iterdir()
    )


def test_a_pack_waiting_too_long_is_recorded_without_waiting_for_the_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc removes a pack nobody recorded once it is an hour old: a writer records its
    packs once the first has waited `UNRECORDED_SECONDS`, as soon as more objects come."""
    from forebear.objects import packs as packs_module

    monkeypatch.setattr(packs_module, "UNRECORDED_SECONDS", 0.0)
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    packs = store.objects.packs
    assert packs is not None
    packs.target = 2_000
    recorded: list[int] = []
    real = packs.index.record_many
    monkeypatch.setattr(
        packs.index, "record_many", lambda written: recorded.append(len(written)) or real(written)
    )
    data = tmp_path / "data"
    data.mkdir()
    for i in range(60):
        (data / f"f{i:02d}.bin").write_bytes(os.urandom(500))
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(data, name="ds")
    assert len(recorded) > 3 and set(recorded) == {1}  # each pack as soon as it was sealed
    assert packs.unrecorded == [] and store.verify() == []


def test_a_format_2_store_keeps_its_loose_objects_readable_after_the_upgrade(
    tmp_path: Path,
) -> None:
    store = forebear.open(format_2(tmp_path / "store"))  # as an older forebear made it
    with forebear.init(project="p", store=store) as run:
        old = run.log_artifact(tree(tmp_path / "a", 5), name="old")
    before = loose_objects(store)
    assert store.upgrade() == 3 and store.upgrade() == 3  # once; again changes nothing
    with forebear.init(project="p", store=store) as run:
        new = run.log_artifact(tree(tmp_path / "b", 8), name="new")
    assert loose_objects(store) == before  # the new files went into a pack
    assert len(pack_files(store)) == 1
    store.close()
    reopened = forebear.open(tmp_path / "store")
    assert reopened.objects.format_version == 3
    assert reopened.artifact("old").download(tmp_path / "o1").is_dir()
    assert old.digest == reopened.artifact("old").digest
    assert (reopened.artifact("new").download(tmp_path / "o2") / "f0003.txt").exists()
    assert new.digest == reopened.artifact("new").digest
    assert reopened.verify() == []
    format_file = json.loads((tmp_path / "store" / "forebear.json").read_text())
    assert format_file["format_version"] == 3


def test_a_damaged_pack_fails_only_its_damaged_object_and_repair_restores_it(
    tmp_path: Path,
) -> None:
    store = forebear.open(tmp_path / "store", chunking=SMALL_CHUNKS)
    store.upgrade()
    data = tree(tmp_path / "data", 50)
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(data, name="ds")
    victim = version.entry("f0010.txt").digest
    slot = store.objects.packed([victim or ""])[victim or ""]
    pack = Path(store.objects.packs.path(slot.pack))  # type: ignore[union-attr]
    os.chmod(pack, 0o644)
    raw = bytearray(pack.read_bytes())
    raw[slot.offset] ^= 0xFF  # one bit pattern of one object changes
    pack.write_bytes(bytes(raw))
    problems = store.verify()
    assert [p.path for p in problems] == ["f0010.txt"]
    with pytest.raises(forebear.IntegrityError, match=r"f0010\.txt"):
        version.open("f0010.txt").read()
    assert version.open("f0011.txt").read() == (data / "f0011.txt").read_bytes()
    report = store.repair(source=data)
    assert report.missing == [] and victim in report.restored
    assert store.verify() == []
    assert version.open("f0010.txt").read() == (data / "f0010.txt").read_bytes()


def packed_table(
    tmp_path: Path, seed: int
) -> tuple[forebear.Store, forebear.ArtifactVersion, ChunkList, bytes]:
    """A packed store holding a 3 MiB file of random bytes cut into small chunks: the
    store, the version, the file's chunk list and its bytes."""
    store = forebear.open(tmp_path / "store", chunking=SMALL_CHUNKS)
    store.upgrade()
    (tmp_path / "table").mkdir()
    original = random.Random(seed).randbytes(3 << 20)
    (tmp_path / "table" / "rows.bin").write_bytes(original)
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(tmp_path / "table", name="table")
    chunks = next(iter(store.content.chunk_lists(version.iter_entries()).values()))
    return store, version, chunks, original


def place_of(store: forebear.Store, digest: str) -> tuple[PackSlot, Path]:
    """Where a packed object is, and the pack file holding it (made writable)."""
    slot = store.objects.packed([digest])[digest]
    pack = Path(store.objects.packs.path(slot.pack))  # type: ignore[union-attr]
    os.chmod(pack, 0o644)
    return slot, pack


def test_a_packed_chunked_file_is_read_a_run_of_chunks_at_a_time_each_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks that lie end to end in a pack are read in one request straight into the
    reader's buffer, and still checked one by one: a damaged chunk is named and none of
    it is handed over."""
    store, version, chunks, original = packed_table(tmp_path, seed=2)
    requests: list[int] = []
    real = store.objects.read_range_into

    def counting(path: str, offset: int, view: memoryview) -> None:
        requests.append(len(view))
        real(path, offset, view)

    monkeypatch.setattr(store.objects, "read_range_into", counting)
    with version.open("rows.bin") as stream:
        assert b"".join(iter(lambda: stream.read(1 << 21), b"")) == original
    assert len(chunks) > 100 and len(requests) < len(chunks) / 10  # runs, not chunks
    with version.open("rows.bin") as stream:  # small reads, front to back
        assert b"".join(iter(lambda: stream.read(1000), b"")) == original
    index = len(chunks) // 2
    slot, pack = place_of(store, chunks.digests[index])
    with open(pack, "r+b") as damaged:  # one byte inside the chunk, same length
        damaged.seek(slot.offset + slot.length // 2)
        byte = damaged.read(1)
        damaged.seek(-1, os.SEEK_CUR)
        damaged.write(bytes([byte[0] ^ 0xFF]))
    handed: list[bytes] = []
    with version.open("rows.bin") as stream, pytest.raises(forebear.IntegrityError) as bad:
        while block := stream.read(1 << 21):
            handed.append(block)
    assert f"chunk {index + 1} of {len(chunks)}" in str(bad.value)
    good = b"".join(handed)
    assert good == original[: len(good)] and len(good) <= chunks.offsets[index]


def test_a_pack_cut_short_fails_the_read_even_into_a_buffer_holding_the_right_bytes(
    tmp_path: Path,
) -> None:
    """Whole chunks are read straight into the caller's buffer: where a pack ends early,
    what the buffer held before (here, the same file's bytes from a first read) must not
    pass for the chunk."""
    store, version, chunks, original = packed_table(tmp_path, seed=4)
    index = len(chunks) // 2
    slot, pack = place_of(store, chunks.digests[index])
    buffer = bytearray(1 << 21)
    with version.open("rows.bin") as stream:
        read = b"".join(bytes(buffer[:n]) for n in iter(lambda: stream.readinto(buffer), 0))
        assert read == original
        os.truncate(pack, slot.offset + slot.length // 2)
        stream.seek(0)
        with pytest.raises(forebear.IntegrityError, match=f"chunk {index + 1} of"):
            while stream.readinto(buffer):
                pass


def test_a_stream_too_large_for_a_pack_is_stored_loose_whole(tmp_path: Path) -> None:
    """The bytes read to learn that a stream does not fit a pack are stored with the rest:
    a 9 MiB stream, and the manifest of a version once it outgrows the threshold."""
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    data = random.Random(3).randbytes(9 << 20)
    digest = hash_bytes(data)
    store.objects.put_stream(io.BytesIO(data), digest)
    assert digest in loose_objects(store) and store.objects.read_bytes(digest) == data
    store.objects.packs.packed_below = 4096  # type: ignore[union-attr]
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(tree(tmp_path / "data", 200), name="ds")
    assert version.digest in loose_objects(store)  # its manifest: about 18 KB
    assert store.verify() == []
    assert forebear.open(tmp_path / "store").artifact("ds").digest == version.digest


def test_runs_of_packed_neighbours_are_cut_where_the_bytes_stop_lying_end_to_end() -> None:
    slots = {
        "a": PackSlot("p1", 0, 10),
        "b": PackSlot("p1", 10, 5),
        "c": PackSlot("p1", 15, 7),  # its expected size is 8: read alone
        "d": PackSlot("p1", 22, 3),
        "e": PackSlot("p2", 25, 4),  # another pack
        "f": PackSlot("p2", 30, 4),  # a gap before it
        "g": PackSlot("p2", 34, 4),
    }
    digests = ["a", "b", "c", "d", "e", "f", "loose", "g", "a"]
    sizes = [10, 5, 8, 3, 4, 4, 9, 4, 10]
    assert list(runs_in_packs(digests, sizes, slots)) == [
        (0, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9)
    ]  # fmt: skip


def test_gc_deletes_dead_packs_and_repacks_sparse_ones(
    packed: forebear.Store, tmp_path: Path
) -> None:
    def log(folder: Path, name: str) -> str:
        before = set(pack_files(packed))
        with forebear.init(project="p", store=packed) as run:
            run.log_artifact(folder, name=name)
        (new,) = set(pack_files(packed)) - before
        return new

    dead = log(tree(tmp_path / "gone", 40), "gone")
    both = tree(tmp_path / "both", 200)
    keep = tree(both / "keep", 10)  # their bytes are in f0000… too: shared with both/
    for path in keep.iterdir():
        path.write_bytes(path.read_bytes() + b" kept")
    sparse = log(both, "mixed")
    manifest_only = log(keep, "small")
    packed.artifact("gone").delete()
    packed.artifact("mixed").delete()
    dry = packed.gc(dry_run=True, grace=dt.timedelta(0))
    assert dry.packs == sorted([dead, sparse]) and dry.repacked == [sparse]
    assert pack_files(packed) == sorted([dead, sparse, manifest_only])  # a dry run
    report = packed.gc(grace=dt.timedelta(0))
    assert report.versions == ["p/gone:v0", "p/mixed:v0"]
    assert report.packs == sorted([dead, sparse]) and report.repacked == [sparse]
    # gone's 40 files and manifest; mixed's manifest and 160 files (its first 40 are gone's)
    assert len(report.objects) == 41 + 161
    left = pack_files(packed)
    assert manifest_only in left and dead not in left and sparse not in left and len(left) == 2
    assert packed.verify() == []
    out = packed.artifact("small").download(tmp_path / "out")
    for path in keep.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes()


def test_a_file_logged_again_after_gc_took_its_chunks_is_stored_whole_again(
    packed: forebear.Store, tmp_path: Path
) -> None:
    """The catalog keeps a chunk list after gc took the file's chunks and the list's own
    copy (no version needed them): a new log of the file stores both again."""
    packed.chunking = SMALL_CHUNKS
    folder = tree(tmp_path / "table", 3, big=1 << 20)
    with forebear.init(project="p", store=packed) as run:
        run.log_artifact(folder, name="table").delete()
    assert packed.gc(grace=dt.timedelta(0)).versions == ["p/table:v0"]
    with forebear.init(project="p", store=packed) as run:
        again = run.log_artifact(folder, name="again")
    assert again.new_bytes is not None and again.new_bytes >= 1 << 20  # the chunks, again
    assert packed.verify() == []
    (listed,) = packed.content.chunk_lists(again.iter_entries()).values()
    assert location(packed).read_chunk_list(listed.digest) == listed.to_bytes()
    out = again.download(tmp_path / "out") / "big.bin"
    assert out.read_bytes() == (folder / "big.bin").read_bytes()


def test_gc_repacks_and_a_reader_holding_the_old_place_still_reads(tmp_path: Path) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    data = tree(tmp_path / "data", 100)
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(data, name="big-part")
        run.log_artifact(data / "f0001.txt", name="one")
    reader = forebear.open(tmp_path / "store")
    one = reader.artifact("one")
    digest = one.entry("f0001.txt").digest or ""
    old_place = reader.objects.packed([digest])[digest]  # remembered by this reader
    store.artifact("big-part").delete()
    report = store.gc(grace=dt.timedelta(0))
    assert old_place.pack in report.repacked
    assert not Path(store.objects.packs.path(old_place.pack)).exists()  # type: ignore[union-attr]
    assert one.open("f0001.txt").read() == (data / "f0001.txt").read_bytes()
    assert reader.verify() == []


def test_a_long_lived_location_is_not_told_present_what_a_gc_elsewhere_took(
    tmp_path: Path,
) -> None:
    """A server's location lives long and remembers where objects were, for reading. What
    is present (what a writer relies on instead of storing, and a server tells its
    clients not to send) is asked of the index: once a gc in another process took the
    objects, they are absent, where the remembered places said present."""
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    data = tree(tmp_path / "data", 20)
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(data, name="gone")
    server_side = forebear.open(tmp_path / "store")
    sizes = {e.digest or "": e.size for e in version.entries()}
    assert server_side.objects.packed(sizes).keys() == sizes.keys()  # places remembered
    assert server_side.objects.present(sizes) == set(sizes)
    store.artifact("gone").delete()
    assert set(store.gc(grace=dt.timedelta(0)).objects) >= set(sizes)
    assert server_side.objects.present(sizes) == set()
    assert server_side.objects.sizes(sizes) == {}


def test_a_chunked_file_read_in_large_reads_while_gc_repacks_its_pack(tmp_path: Path) -> None:
    """Large reads of a chunked file go to the pack places the reader looked up ahead;
    when gc rewrites that pack mid-read, both halves of a read (read at once on two
    cores) look their chunks up again, and every byte still arrives checked."""
    store = forebear.open(tmp_path / "store", chunking=SMALL_CHUNKS)
    store.upgrade()
    data = tmp_path / "data"
    data.mkdir()
    table = data / "table.bin"
    table.write_bytes(random.Random(3).randbytes(4 << 20))
    (data / "noise.bin").write_bytes(random.Random(4).randbytes(6 << 20))
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(data, name="mixed")  # both files' chunks in the same pack
        run.log_artifact(table, name="table")  # the same chunks: nothing new stored
    reader = forebear.open(tmp_path / "store")
    with reader.artifact("table").open("table.bin") as stream:
        head = stream.read(3 << 20)
        store.artifact("mixed").delete()
        report = store.gc(grace=dt.timedelta(0))
        assert report.repacked  # the pack held more dead bytes than live ones
        rest = b"".join(iter(lambda: stream.read(3 << 20), b""))
    assert head + rest == table.read_bytes()
    assert reader.verify() == []


def test_purge_rewrites_every_pack_that_held_the_bytes(
    packed: forebear.Store, tmp_path: Path
) -> None:
    secret = b"SECRET-CUSTOMER-RECORD " * 20
    data = tree(tmp_path / "data", 20)
    (data / "secret.txt").write_bytes(secret)
    with forebear.init(project="p", store=packed) as run:
        version = run.log_artifact(data, name="ds")
    before = set(pack_files(packed))
    report = packed.purge(data / "secret.txt", reason="GDPR request 7")
    assert report.bytes == len(secret)
    after = set(pack_files(packed))
    assert not before & after  # the pack that held it was rewritten
    objects = location(packed)
    assert objects.packs is not None
    for pack in after:
        assert b"SECRET-CUSTOMER" not in objects.fs.cat_file(objects.packs.path(pack))
    assert version.open("f0003.txt").read() == (data / "f0003.txt").read_bytes()
    with pytest.raises(forebear.IntegrityError, match="purged"):
        version.open("secret.txt").read()
    assert packed.verify() == []


def test_rebuild_index_recovers_the_catalog_from_the_packs(tmp_path: Path) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    data = tree(tmp_path / "data", 30, big=200_000)
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(data, name="ds")
    store.close()
    with sqlite3.connect(tmp_path / "store" / "meta.db") as db:  # an older catalog backup
        db.execute("DELETE FROM packed_objects")
        db.execute("DELETE FROM packs")
    broken = forebear.open(tmp_path / "store")
    assert [p.path for p in broken.verify()]  # every packed object is missing now
    packs, objects = broken.rebuild_index()
    assert (packs, objects) == (1, 32)  # 30 files, big.bin (stored whole) and the manifest
    assert broken.verify() == []
    out = broken.artifact("ds").download(tmp_path / "out")
    assert (out / "big.bin").read_bytes() == (data / "big.bin").read_bytes()


def test_rebuild_index_keeps_a_pack_a_writer_recorded_while_it_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(tree(tmp_path / "data", 5), name="ds")
    more = tmp_path / "more"
    more.mkdir()
    for index in range(4):
        (more / f"m{index}.bin").write_bytes(os.urandom(100))
    listing = store.objects.iter_packs
    listed: list[int] = []

    def a_writer_logs_once_the_packs_are_listed() -> Iterator[Any]:
        packs = list(listing())
        if not listed:  # another process's log, between the listing and the rebuild's commit
            other = forebear.open(tmp_path / "store")
            with forebear.init(project="p", store=other) as run:
                run.log_artifact(more, name="more")
            other.close()
        listed.append(len(packs))
        return iter(packs)

    monkeypatch.setattr(store.objects, "iter_packs", a_writer_logs_once_the_packs_are_listed)
    assert store.rebuild_index() == (1, 6)  # what it read: the first pack
    assert listed[0] == 1
    assert store.verify() == []  # the writer's pack was kept: its version reads whole
    out = store.artifact("more").download(tmp_path / "out")
    assert sorted(p.read_bytes() for p in out.iterdir()) == sorted(
        p.read_bytes() for p in more.iterdir()
    )


def test_a_pack_file_no_writer_recorded_is_removed_after_an_hour(tmp_path: Path) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(tree(tmp_path / "data", 5), name="ds")
    (only,) = pack_files(store)
    stray = Path(store.objects.packs.path("ab" + "0" * 30))  # type: ignore[union-attr]
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"a writer was killed before it recorded this pack")
    assert store.gc(grace=dt.timedelta(0)).packs == []  # young: a writer may be recording it
    an_hour_ago = stray.stat().st_mtime - 3700
    os.utime(stray, (an_hour_ago, an_hour_ago))
    assert store.gc(grace=dt.timedelta(0)).packs == ["ab" + "0" * 30]
    assert pack_files(store) == [only]
    assert store.verify() == []


def test_a_new_store_is_made_in_format_3(tmp_path: Path) -> None:
    store = tmp_path / "project" / ".forebear"
    store.parent.mkdir()
    cli_ok(store, "init")
    assert re.search(r"format\s+3,", cli_ok(store, "status"))
    assert json.loads((store / "forebear.json").read_text())["format_version"] == 3
    assert cli_ok(store, "upgrade") == "the store is in format 3 already\n"
    tree(tmp_path / "data", 12)
    cli_ok(store, "log", str(tmp_path / "data"), "--name", "ds")
    with forebear.open(store) as opened:
        assert len(pack_files(opened)) == 1 and loose_objects(opened) == []


def test_a_store_is_made_in_the_format_asked_for_and_keeps_its_own(
    make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    older = tmp_path / "older" / ".forebear"
    older.parent.mkdir()
    cli_ok(older, "init", "--format", "2")
    assert re.search(r"format\s+2,", cli_ok(older, "status"))
    cli_ok(older, "log", str(make_tree("d", {"a.txt": "a", "b.txt": "b"})), "--name", "ds")
    with forebear.open(older) as opened:
        assert pack_files(opened) == [] and len(loose_objects(opened)) == 3
    refused = run_cli("--objects", str(older), "init", "--format", "3")
    assert refused.returncode == 1 and "'forebear upgrade' moves it to format 3" in refused.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = run_cli("init", "--objects", str(older), "--format", "3", cwd=elsewhere)
    assert refused.returncode == 1 and list(elsewhere.iterdir()) == []  # no forebear.toml
    assert run_cli("--objects", str(older), "init", "--format", "4").returncode == 2
    with pytest.raises(forebear.StoreError, match="in format 2 already"):
        forebear.open(older, format=3)
    with pytest.raises(forebear.InvalidInput, match="a new store is format 2 or 3"):
        forebear.open(tmp_path / "never", format=1)
    assert not (tmp_path / "never").exists()  # nothing made
    with forebear.open(tmp_path / "made", format=2) as made:
        assert made.objects.format_version == 2
    with forebear.open(tmp_path / "made") as again:  # its own format, whatever the default
        assert again.objects.format_version == 2


def test_a_newer_format_is_refused_and_the_cli_upgrades_and_rebuilds(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    store = format_2(project / ".forebear")  # as an older forebear made it
    cli_ok(store, "init")
    assert re.search(r"format\s+2,", cli_ok(store, "status"))
    assert "from format 2 to format 3" in cli_ok(store, "upgrade")
    assert json.loads(cli_ok(store, "upgrade", "--json")) == {"format": 3, "format_before": 3}
    tree(project / "data", 12)
    cli_ok(store, "log", str(project / "data"), "--name", "ds")
    assert json.loads(cli_ok(store, "rebuild-index", "--json"))["packs"] == 1
    assert "indexed" in cli_ok(store, "rebuild-index")
    (store / "forebear.json").write_text('{"format_version": 4, "hash": "xxh3-128"}')
    with pytest.raises(forebear.StoreVersionError, match="format version 4"):
        forebear.open(store)


def test_a_format_2_store_is_left_as_it_is(make_tree: Callable[..., Path], tmp_path: Path) -> None:
    store = forebear.open(format_2(tmp_path / "store"))
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(make_tree("d", {"a.txt": "a", "b.txt": "b"}), name="ds")
    assert pack_files(store) == [] and len(loose_objects(store)) == 3
    with pytest.raises(forebear.StoreError, match="forebear upgrade"):
        store.rebuild_index()


def test_rebuild_index_indexes_only_objects_whose_bytes_match(tmp_path: Path) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(tree(tmp_path / "data", 4), name="ds")
    (pack,) = pack_files(store)
    index_copy = Path(store.objects.packs.path(pack, ".idx"))  # type: ignore[union-attr]
    body = json.loads(index_copy.read_bytes())
    forged = "f" * 32  # a writer would rely on it unread: it must not be indexed
    body["objects"].append([forged, 0, 5])
    os.chmod(index_copy, 0o644)
    index_copy.write_text(json.dumps(body, separators=(",", ":"), sort_keys=True))
    assert store.rebuild_index() == (1, 5)  # 4 files and the manifest, not the forged one
    assert store.objects.packed([forged]) == {}
    assert store.verify() == []


@pytest.mark.parametrize(
    "damage",
    [b"\xff\xfe not json", b"", b'{"objects":[],"pack":"x","pack_version":1,"size":0}'],
    ids=["garbage", "empty", "lists-nothing"],
)
def test_rebuild_index_loses_nothing_the_catalog_knew_when_an_index_copy_is_damaged(
    tmp_path: Path, damage: bytes
) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    data = tree(tmp_path / "data", 6)
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(data, name="ds")
    (pack,) = pack_files(store)
    index_copy = Path(store.objects.packs.path(pack, ".idx"))  # type: ignore[union-attr]
    os.chmod(index_copy, 0o644)
    index_copy.write_bytes(damage)
    assert store.rebuild_index() == (1, 7)  # 6 files and the manifest, kept from the catalog
    assert store.verify() == []
    assert store.gc(grace=dt.timedelta(0)).packs == []  # the pack is known: gc keeps it
    # and the pack is described by the location alone again: a new catalog finds it all
    with sqlite3.connect(tmp_path / "store" / "meta.db") as db:
        db.execute("DELETE FROM packed_objects")
        db.execute("DELETE FROM packs")
    store.close()
    again = forebear.open(tmp_path / "store")
    assert again.rebuild_index() == (1, 7)
    out = again.artifact("ds").download(tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in data.iterdir())


def test_json_nested_too_deep_in_the_stores_own_files_is_refused_by_name(
    tmp_path: Path,
) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(tree(tmp_path / "data", 4), name="ds")
    (pack,) = pack_files(store)
    deep = "[" * 200_000 + "]" * 200_000
    index_copy = Path(store.objects.packs.path(pack, ".idx"))  # type: ignore[union-attr]
    os.chmod(index_copy, 0o644)
    index_copy.write_text(deep)
    assert store.rebuild_index() == (1, 5)  # the catalog still knew them all
    store.close()
    format_file = tmp_path / "store" / "forebear.json"
    os.chmod(format_file, 0o644)
    format_file.write_text(deep)
    with pytest.raises(forebear.StoreError, match="not a forebear format file"):
        forebear.open(tmp_path / "store").artifact("ds")


def test_a_packed_store_cuts_smaller_chunks_so_an_edit_stores_little(tmp_path: Path) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    rows = [f"{i},{i * 7 % 1000},row number {i}\n".encode() for i in range(1_500_000)]
    table = tmp_path / "data" / "table.csv"
    table.parent.mkdir()
    table.write_bytes(b"".join(rows))  # about 40 MB, as in the benchmark's table
    with forebear.init(project="p", store=store) as run:
        run.log_artifact(table.parent, name="t")
    middle = len(rows) // 2
    for i in range(middle, middle + len(rows) // 100):  # 1 % of the rows, in one block
        rows[i] = rows[i].replace(b"row", b"ROW")
    table.write_bytes(b"".join(rows))
    with forebear.init(project="p", store=store) as run:
        edited = run.log_artifact(table.parent, name="t")
    assert edited.chunking is not None and edited.chunking["avg_size"] == 64 << 10
    assert edited.new_bytes is not None and edited.new_bytes < 0.02 * table.stat().st_size
    assert store.verify() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (CI runs as root)")
@pytest.mark.parametrize(("count", "size"), [(300, 8192), (2500, 1024)])
def test_a_full_disk_fails_the_log_clearly_and_leaves_no_short_pack(
    tmp_path: Path, count: int, size: int
) -> None:
    """A real full filesystem (a 4 MiB tmpfs): the log fails with one clear error, no pack
    is published short, and the retry once space is freed stores a version that verifies.
    2,500 files are hashed by worker processes, which stage their bytes in the store's
    temporary folder until the disk is full."""
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        import forebear
        from forebear.hashing import hash_bytes
        objects, catalog = Path("{tmp_path}/objects"), "sqlite:///{tmp_path}/meta.db"
        data = Path("{tmp_path}/data"); data.mkdir()
        for i in range({count}):  # 2.3-2.4 MiB in small files: they go into one pack
            (data / f"f{{i}}.bin").write_bytes(os.urandom({size}))
        store = forebear.Store(catalog, str(objects), cache_dir="{tmp_path}/cache")
        store.upgrade()
        free = os.statvfs(objects).f_bavail * os.statvfs(objects).f_frsize
        filler = objects / "filler"
        filler.write_bytes(b"x" * (free - 1024 * 1024))  # room for 1 MiB
        try:
            with forebear.init(project="p", store=store) as run:
                run.log_artifact(data, name="ds")
            raise SystemExit("the log should have failed on the full disk")
        except forebear.StoreError as exc:
            assert "space" in str(exc).lower(), exc
        for path in (objects / "packs").rglob("*"):
            if path.is_file() and not path.name.endswith(".idx"):
                assert hash_bytes(path.read_bytes()) == path.parent.name + path.name, path
        filler.unlink()
        with forebear.init(project="p", store=store) as run:
            version = run.log_artifact(data, name="ds")
        assert store.verify() == [], store.verify()
        assert version.open("f7.bin").read() == (data / "f7.bin").read_bytes()
        assert list((objects / "tmp").iterdir()) == []
        print("ok")
        """
    )
    (tmp_path / "objects").mkdir()
    done = python_in_own_mounts(f"mount -t tmpfs -o size=4m tmpfs {tmp_path}/objects", script)
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == "ok"


def test_push_and_pull_between_packed_and_loose_stores(tmp_path: Path) -> None:
    packed = forebear.open(tmp_path / "packed")
    packed.upgrade()
    loose = forebear.open(format_2(tmp_path / "loose"))
    data = tree(tmp_path / "data", 50, big=2_000_000)
    with forebear.init(project="p", store=packed) as run:
        run.log_artifact(data, name="ds")
    report = packed.push(loose)
    assert report.objects_copied > 0 and pack_files(loose) == []  # format 2 stays loose
    out = loose.artifact("p/ds").download(tmp_path / "out")
    assert (out / "big.bin").read_bytes() == (data / "big.bin").read_bytes()
    again = forebear.open(tmp_path / "again")  # new: in packs
    loose.push(again)  # from loose objects into the target's packs
    assert loose_objects(again) == [] and len(pack_files(again)) == 1
    assert again.verify() == [] and loose.verify() == []


def test_a_tampered_pack_index_never_reads_outside_the_packs(tmp_path: Path) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(tree(tmp_path / "data", 3), name="ds")
    store.close()
    with sqlite3.connect(tmp_path / "store" / "meta.db") as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("UPDATE packed_objects SET pack = '../../../../../../../etc/passwd'")
        db.execute("UPDATE packs SET digest = '../../../../../../../etc/passwd'")
    tampered = forebear.open(tmp_path / "store")
    with pytest.raises(forebear.StoreError, match="not a digest"):
        tampered.artifact("ds").open("f0001.txt").read()
    assert version.digest == tampered.artifact("ds").digest


def test_an_index_row_with_a_forged_length_reads_no_more_than_the_pack_holds(
    tmp_path: Path,
) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    data = tree(tmp_path / "data", 3)
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(data, name="ds")
    (entry,) = [e for e in version.entries() if e.path == "f0001.txt"]
    store.close()
    with sqlite3.connect(tmp_path / "store" / "meta.db") as db:  # a terabyte, at offset 0
        db.execute("UPDATE packed_objects SET length = ? WHERE digest = ?", (1 << 40, entry.digest))
    tampered = forebear.open(tmp_path / "store")
    with pytest.raises(forebear.IntegrityError, match=r"f0001\.txt"):
        tampered.artifact("ds").download(tmp_path / "out")
    assert [p.path for p in tampered.verify()] == ["f0001.txt"]
    assert tampered.rebuild_index() == (1, 4)  # the index copy says where it really is
    assert tampered.verify() == []


@pytest.mark.parametrize(
    ("column", "value"), [("offset", -5), ("length", -5), ("offset", "abc"), ("length", 2.5)]
)
def test_an_impossible_index_row_is_refused_by_name_and_rebuilt(
    tmp_path: Path, column: str, value: object
) -> None:
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    with forebear.init(project="p", store=store) as run:
        version = run.log_artifact(tree(tmp_path / "data", 3), name="ds")
    (entry,) = [e for e in version.entries() if e.path == "f0001.txt"]
    store.close()
    with sqlite3.connect(tmp_path / "store" / "meta.db") as db:
        db.execute(
            f"UPDATE packed_objects SET {column} = ? WHERE digest = ?", (value, entry.digest)
        )
    tampered = forebear.open(tmp_path / "store")
    with pytest.raises(forebear.StoreError, match=f"{entry.digest}.*rebuild-index"):
        tampered.artifact("ds").download(tmp_path / "out")
    with pytest.raises(forebear.StoreError, match="the index is damaged"):
        tampered.verify()
    assert tampered.rebuild_index() == (1, 4)
    assert tampered.verify() == []


def test_only_a_server_admin_may_upgrade_or_rebuild_the_index(tmp_path: Path) -> None:
    from .serving import ForebearServer

    format_2(tmp_path / "store")  # as an older forebear made it
    server = ForebearServer.over_folder(tmp_path)
    try:
        writer = server.store(server.user("alice", {"p": "writer"}))
        with pytest.raises(forebear.PermissionDenied, match="admin"):
            writer.upgrade()
        with pytest.raises(forebear.PermissionDenied, match="admin"):
            writer.rebuild_index()
        writer.close()
        with forebear.Store(server.db_url, server.objects_url) as direct:
            assert direct.objects.format_version == 2  # nothing changed
    finally:
        server.stop()


def test_a_packed_store_on_s3_downloads_small_files_straight_from_the_packs(
    s3_url: str, tmp_path: Path
) -> None:
    data = tree(tmp_path / "data", 400, big=2_000_000)
    (data / "same.txt").write_bytes((data / "f0001.txt").read_bytes())  # one object, two files
    catalog = f"sqlite:///{tmp_path}/meta.db"
    with forebear.Store(catalog, s3_url, cache_dir=tmp_path / "cache") as store:
        store.upgrade()
        with forebear.init(project="p", store=store) as run:
            run.log_artifact(data, name="ds")
    with forebear.Store(catalog, s3_url, cache_dir=tmp_path / "fresh-cache") as store:
        out = store.artifact("ds").download(tmp_path / "out")
        cached = store.cache.usage()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in data.iterdir())
    for path in data.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes()
    # the small files were written once, into the destination; only big.bin's chunks
    # went through the cache
    assert 0 < cached.objects < 400


def test_a_server_or_process_opened_before_an_upgrade_reads_what_is_packed_after_it(
    server: ForebearServer, tmp_path: Path
) -> None:
    """An admin upgrades the store from another process (one replica, a script): a server
    that opened the store before, and a process that did, read the packed files without a
    restart; a missing object is still one clear error there."""
    token = server.user("alice", {"iris": "reader"})
    opened_before = server.direct  # opened in format 2, like the server process
    with forebear.Store(server.db_url, server.objects_url) as admin:
        assert admin.upgrade() == 3
        with forebear.init(project="iris", store=admin) as run:
            version = run.log_artifact(tree(tmp_path / "data", 30), name="data")
        assert admin.objects.packed([e.digest or "" for e in version.entries()])
    expected = (tmp_path / "data" / "f0029.txt").read_bytes()
    with forebear.Store(server.url, token=token, cache_dir=tmp_path / "cache") as client:
        assert client.artifact("iris/data:v0").open("f0029.txt").read() == expected
        client.artifact("iris/data:v0").download(tmp_path / "got")
    assert (tmp_path / "got" / "f0029.txt").read_bytes() == expected
    assert opened_before.artifact("iris/data:v0").open("f0029.txt").read() == expected
    assert opened_before.objects.packs is not None  # and from now on it writes packs too
    with pytest.raises(forebear.ObjectNotFound):
        opened_before.objects.read_bytes(hash_bytes(b"never stored"))


def test_small_files_read_straight_into_a_pack_are_checked_there(tmp_path: Path) -> None:
    """Files packed by `put_files` are read into the pack's block without a copy: each is
    still checked against the digest it was hashed to, one that changed meanwhile (other
    bytes, or grown) is refused by name and leaves nothing of itself, and the files that
    crossed from one block to the next read back whole."""
    store = forebear.open(tmp_path / "store")
    store.upgrade()
    objects = store.objects
    rng = random.Random(7)
    files = []
    for i in range(400):  # 400 x 5,000 bytes: two blocks of the pack's buffer, and more
        path = tmp_path / f"f{i:03d}.bin"
        path.write_bytes(rng.randbytes(5000))
        files.append((str(path), hash_bytes(path.read_bytes())))
    sizes = {digest: 5000 for _, digest in files}
    objects.put_files(files, sizes=sizes)
    objects.flush()
    for path, digest in files:
        assert objects.read_bytes(digest) == Path(path).read_bytes()
    assert all(slot.length == 5000 for slot in objects.packed(sizes).values())

    same_size, grown = tmp_path / "same.bin", tmp_path / "grown.bin"
    for victim, later in ((same_size, b"y" * 5000), (grown, b"x" * 5001)):
        victim.write_bytes(b"x" * 5000)
        digest = hash_bytes(victim.read_bytes())
        victim.write_bytes(later)  # changed after it was hashed
        with pytest.raises(forebear.IntegrityError, match=re.escape(victim.name)):
            objects.put_files([(str(victim), digest)], sizes={digest: 5000})
        objects.flush()
        assert not objects.has(digest)
    assert objects.present(sizes) == set(sizes)
    assert store.verify() == []
