"""Manifests: canonical bytes, digests independent of insertion order, and diffs."""

from __future__ import annotations

import io
import json
import re
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebear import IntegrityError, InvalidPath, StoreError
from forebear import manifest as manifest_module
from forebear.hashing import hash_bytes
from forebear.manifest import (
    Manifest,
    ManifestEntry,
    ManifestWriter,
    UnreadableManifest,
    checked_entry,
    checked_rows,
    diff_entries,
    read_entries,
)

segment = st.text(alphabet="abcXYZ019._- é", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..") and s.strip() == s and s
)
paths = st.lists(segment, min_size=1, max_size=3).map("/".join)
digests = st.binary(min_size=1, max_size=8).map(hash_bytes)
entries = st.dictionaries(paths, st.tuples(digests, st.integers(0, 10**12)), max_size=20)


@given(entries, st.randoms())
def test_digest_does_not_depend_on_insertion_order(
    items: dict[str, tuple[str, int]], random: object
) -> None:
    built = [ManifestEntry(p, d, s) for p, (d, s) in items.items()]
    shuffled = list(built)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    first, second = Manifest.build(built), Manifest.build(shuffled)
    assert first.to_bytes() == second.to_bytes()
    assert first.digest == second.digest == hash_bytes(first.to_bytes())
    assert Manifest.from_bytes(first.to_bytes()) == first


def test_canonical_form() -> None:
    manifest = Manifest.build(
        [
            ManifestEntry("b.txt", "0" * 32, 2),
            ManifestEntry("a/é.txt", "1" * 32, 1),
            ManifestEntry("ref.parquet", "2" * 32, 9, uri="file:///data/ref.parquet"),
        ]
    )
    raw = manifest.to_bytes()
    assert b" " not in raw
    document = json.loads(raw)
    assert document["manifest_version"] == 1
    assert document["hash"] == "xxh3-128"
    assert [e["path"] for e in document["entries"]] == ["a/é.txt", "b.txt", "ref.parquet"]
    assert "é".encode() in raw  # UTF-8, not \\u escapes
    assert document["entries"][2]["uri"] == "file:///data/ref.parquet"
    assert manifest.size == 12


def test_conflicting_entries_and_unsafe_paths_are_refused() -> None:
    with pytest.raises(InvalidPath, match="both be stored"):
        Manifest.build([ManifestEntry("a", "0" * 32, 1), ManifestEntry("a", "1" * 32, 1)])
    hostile = json.dumps(
        {"manifest_version": 1, "hash": "xxh3-128", "entries": [{"path": "../x", "size": 1}]}
    )
    with pytest.raises(InvalidPath):
        Manifest.from_bytes(hostile.encode())


def test_diff() -> None:
    old = [ManifestEntry("keep", "0" * 32, 1), ManifestEntry("gone", "1" * 32, 1),
           ManifestEntry("edit", "2" * 32, 1)]  # fmt: skip
    new = [ManifestEntry("keep", "0" * 32, 1), ManifestEntry("edit", "3" * 32, 1),
           ManifestEntry("born", "4" * 32, 1)]  # fmt: skip
    changes = diff_entries(old, new)
    assert (changes.added, changes.removed, changes.modified) == (["born"], ["gone"], ["edit"])
    assert not diff_entries(old, old)


@given(entries, st.lists(st.tuples(paths, st.text(max_size=12)), max_size=5))
def test_canonical_bytes_are_one_sorted_compact_json_document(
    items: dict[str, tuple[str, int]], references: list[tuple[str, str]]
) -> None:
    # Entry-by-entry encoding must give exactly the bytes of one json.dumps of the whole
    # document, which is what every stored manifest digest was computed over.
    built = [ManifestEntry(p, d, s) for p, (d, s) in items.items()]
    built += [
        ManifestEntry("ref/" + p, None, 1, uri=f"s3://b/{p}", etag=tag)
        for p, tag in dict(references).items()
    ]
    manifest = Manifest.build(built)
    document = {
        "manifest_version": 1,
        "hash": "xxh3-128",
        "entries": [e.to_dict() for e in manifest],
    }
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert manifest.to_bytes() == expected.encode("utf-8")


@given(entries, st.lists(st.tuples(paths, st.text(max_size=12)), max_size=5), st.integers(1, 7))
def test_rows_in_batches_encode_to_the_same_bytes(
    items: dict[str, tuple[str, int]], references: list[tuple[str, str]], batch: int
) -> None:
    # A draft writes its kept entries as catalog rows, a batch at a time: the digest must
    # be the one of the same entries added one by one.
    built = [ManifestEntry(p, d, s) for p, (d, s) in items.items()]
    built += [
        ManifestEntry("ref/" + p, None, 1, uri=f"s3://b/{p}", etag=tag)
        for p, tag in dict(references).items()
    ]
    ordered = list(Manifest.build(built))
    one_by_one, in_rows = io.BytesIO(), io.BytesIO()
    writer, rows_writer = ManifestWriter(one_by_one), ManifestWriter(in_rows)
    for entry in ordered:
        writer.add(entry)
    rows = [(e.path, e.digest, e.size, e.uri, e.etag) for e in ordered]
    for start in range(0, len(rows), batch):
        rows_writer.add_rows(rows[start : start + batch])
    assert rows_writer.finish() == writer.finish()
    assert in_rows.getvalue() == one_by_one.getvalue()
    assert (rows_writer.count, rows_writer.size) == (writer.count, writer.size)
    if len(rows) > 1:
        with pytest.raises(ValueError, match="out of order"):
            ManifestWriter(None).add_rows([rows[1], rows[0]])


def test_rows_written_a_few_at_a_time_make_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # add_rows writes what it encoded every ROWS_A_WRITE rows: the pieces must join into
    # the document of one write, and a row out of order is still refused across them
    rows = [(f"f{i:03d}", hash_bytes(b"%d" % i), i, None, None) for i in range(10)]
    rows.insert(5, ("f004~ref", None, 3, "s3://b/k", "etag"))
    whole, pieces = io.BytesIO(), io.BytesIO()
    whole_writer = ManifestWriter(whole)
    whole_writer.add_rows(rows)
    monkeypatch.setattr(manifest_module, "ROWS_A_WRITE", 3)
    pieces_writer = ManifestWriter(pieces)
    pieces_writer.add_rows(iter(rows[:4]))
    pieces_writer.add_rows(iter(rows[4:]))
    assert pieces_writer.finish() == whole_writer.finish()
    assert pieces.getvalue() == whole.getvalue()
    assert (pieces_writer.count, pieces_writer.size) == (11, sum(r[2] for r in rows))
    with pytest.raises(ValueError, match="out of order"):
        ManifestWriter(None).add_rows(iter([*rows[:7], rows[0]]))


def test_rows_from_a_generator_are_not_all_held_at_once() -> None:
    # a download checks a version's catalog entries against its digest by streaming them
    # into a writer: a million entries once took 372 MiB there
    def rows(count: int) -> Iterator[tuple[str, str, int, None, None]]:
        digest = "0" * 32
        for i in range(count):
            yield (f"folder/file-{i:08d}.bin", digest, i, None, None)

    tracemalloc.start()
    try:
        ManifestWriter(None).add_rows(rows(200_000))  # about 15 MB of entries, encoded
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak / 2**20:.1f} MiB held"


@given(entries, st.integers(1, 64))
def test_entries_read_a_block_at_a_time_are_the_manifests(
    items: dict[str, tuple[str, int]], block: int
) -> None:
    built = [ManifestEntry(p, d, s) for p, (d, s) in items.items()]
    built.append(ManifestEntry("ref/x é", None, 3, uri="s3://b/x é", etag='"e\\"'))
    manifest = Manifest.build(built)
    raw = manifest.to_bytes()
    assert list(read_entries(io.BytesIO(raw), block)) == list(Manifest.from_bytes(raw))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "does not begin with its entries"),
        (b"[]", "does not begin with its entries"),
        (b'{"hash":"xxh3-128","entries":[]}', "does not begin with its entries"),
        (b'{"entries":[', "unreadable manifest"),
        (b'{"entries":[1],"hash":"xxh3-128","manifest_version":1}', "is not an object"),
        (b'{"entries":[{"path":"a","digest":null,"size":1,"uri":"s3://b/a"}};', "',' or ']'"),
        (b'{"entries":[],"hash":"xxh3-128","manifest_version":1}trailing', "unreadable"),
        (b'{"entries":[]}', "nothing but its hash and version"),
        (b'{"entries":[{"path":"\xff"}]}', "unreadable manifest"),
        (b'{"entries":[' + b"[" * 100_000, "unreadable manifest"),
    ],
)
def test_bytes_that_are_no_manifest_are_unreadable(raw: bytes, problem: str) -> None:
    with pytest.raises(UnreadableManifest, match=re.escape(problem)):
        list(read_entries(io.BytesIO(raw), 7))


def test_an_entry_longer_than_any_is_refused_without_reading_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(manifest_module, "ENTRY_LIMIT", 100)
    endless = io.BytesIO(b'{"entries":[{"path":"' + b"a" * 10_000)
    with pytest.raises(UnreadableManifest):
        list(read_entries(endless, 16))
    assert endless.tell() < 400  # not the whole stream


def test_a_manifest_of_a_later_version_asks_for_a_newer_forebear() -> None:
    raw = b'{"entries":[],"hash":"xxh3-128","manifest_version":99}'
    with pytest.raises(StoreError, match="upgrade forebear"):
        list(read_entries(io.BytesIO(raw)))


@pytest.mark.parametrize("digest", ["0" * 32 + "\n", "0" * 31, "0" * 32 + "0", "0" * 31 + "G"])
def test_an_entry_read_back_with_a_malformed_digest_is_refused(digest: str) -> None:
    """A digest must be exactly 32 hex digits: not even a line end may follow them (it
    would name an object under another name)."""
    with pytest.raises(IntegrityError, match="malformed"):
        checked_entry("a.txt", digest, 1, None, None)
    with pytest.raises(IntegrityError, match="malformed"):
        checked_rows([("a.txt", digest, 1, None, None)])


@pytest.mark.parametrize("size", [2**63, 2**70, -1, 1.5, "12", True, None])
def test_a_manifest_whose_size_is_no_count_of_bytes_is_unreadable(size: object) -> None:
    document = {"manifest_version": 1, "entries": [{"path": "a.txt", "size": size,
                                                    "uri": "s3://b/a.txt"}]}  # fmt: skip
    with pytest.raises(StoreError, match=r"unreadable manifest: the size of 'a\.txt' is"):
        Manifest.from_bytes(json.dumps(document).encode())
    largest = {**document, "entries": [{"path": "a.txt", "size": 2**63 - 1, "uri": "s3://b/a"}]}
    assert Manifest.from_bytes(json.dumps(largest).encode()).entries[0].size == 2**63 - 1
