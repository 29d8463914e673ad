"""Reading where the data lives, and drafts: ``forebear://`` against a local file, and a
new version that changes one file of 100,000.

    python benchmarks/reading_bench.py                                # 1 GiB, 100,000 files
    python benchmarks/reading_bench.py --size-mib 64 --files 2000     # quick
    python benchmarks/reading_bench.py --write docs/benchmarks.md

Reading: one file of SIZE random bytes is logged into a fresh local store (so it is
stored in chunks), then read whole, in 8 MiB blocks, through ``fsspec.open("forebear://
...")`` (every chunk verified against its digest) and from the plain local file; both
warm (the page cache holds the bytes, as after a first read), and from the disk (the
page cache emptied before each read; root only). Each is the median of REPEAT reads,
the local file and ``forebear://`` read in turn (slow spells fall on both). A
1 MiB byte range in the middle of the file is read with ``cat_file``, and the bytes
fetched from the store are counted: only the chunks the range touches.

Drafts: a version of FILES small files is logged; then ``version.new_draft()``, one file
replaced with ``new_file``, and ``run.log_artifact(draft)`` make the next version, timed
from the draft to the committed version (the median of REPEAT drafts, each changing a
different file). Nothing of the old version is read from disk or hashed again.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fsspec
from lineage_bench import machine, write_section

import forebear

MARK = "reading-bench"
BLOCK = 8 << 20


def drop_caches() -> bool:
    """Empty the page cache (root only), so the next read comes from the disk; the time
    this takes is counted in the read, the same for both sides."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
    except OSError:
        return False
    return True


def read_all(opener: Callable[[], object]) -> int:
    total = 0
    with opener() as handle:  # type: ignore[attr-defined]
        while block := handle.read(BLOCK):
            total += len(block)
    return total


def reading(folder: Path, size: int, repeat: int) -> dict[str, float]:
    data = folder / "big.bin"
    with open(data, "wb") as out:
        left = size
        while left:
            step = min(left, 64 << 20)
            out.write(os.urandom(step))
            left -= step
    plain = functools.partial(open, data, "rb")
    read_all(plain)  # warm
    packed = forebear.open(folder / "packed", format=3)  # the chunks go into packs
    with forebear.init(project="bench", name="write", store=packed) as run:
        run.log_artifact(str(data), name="big")
    in_packs = through_forebear(packed, plain, size, repeat)
    packed.close()
    store = forebear.open(folder / "store", format=2)  # each chunk a file of its own
    with forebear.init(project="bench", name="write", store=store) as run:
        run.log_artifact(str(data), name="big")
    through = through_forebear(store, plain, size, repeat)
    url = "forebear://bench/big:v0/big.bin"
    fs = fsspec.filesystem("forebear", store=store)
    middle = size // 2
    fetched: list[int] = []
    location = store.objects
    original, original_into = location.read_bytes, location.read_into

    def counting(digest: str, label: str) -> bytes:  # count what the range fetches
        data = original(digest, label)
        fetched.append(len(data))
        return data

    def counting_into(digests: Any, sizes: Any, view: memoryview, name: Any) -> None:
        original_into(digests, sizes, view, name)  # chunks read straight into a buffer
        fetched.append(sum(sizes))

    location.read_bytes = counting  # type: ignore[method-assign]
    location.read_into = counting_into  # type: ignore[method-assign]
    start = time.perf_counter()
    part = fs.cat_file(url, start=middle, end=middle + (1 << 20))
    ranged = time.perf_counter() - start
    location.read_bytes, location.read_into = original, original_into  # type: ignore[method-assign]
    assert len(part) == 1 << 20
    store.close()
    return {
        "local": through["local"],
        "forebear": through["forebear"],
        "ratio": through["local"] / through["forebear"],
        "packs_local": in_packs["local"],
        "packs": in_packs["forebear"],
        "cold_local": through["cold_local"],
        "cold_forebear": through["cold_forebear"],
        "cold_packs_local": in_packs["cold_local"],
        "cold_packs": in_packs["cold_forebear"],
        "range_seconds": ranged,
        "range_fetched": float(sum(fetched)),
    }


def through_forebear(
    store: forebear.Store, plain: Callable[[], object], size: int, repeat: int
) -> dict[str, float]:
    """Seconds to read the logged file through ``forebear://`` and the local file, warm
    and from the disk: each the median of ``repeat`` reads, the two read in turn so that
    the machine's slow spells fall on both."""
    fs = fsspec.filesystem("forebear", store=store, skip_instance_cache=True)
    verified = functools.partial(fs.open, "forebear://bench/big:v0/big.bin", "rb")
    assert read_all(verified) == size  # and warm
    local, through = side_by_side(lambda: read_all(plain), lambda: read_all(verified), repeat)
    cold_local = cold = float("nan")
    if drop_caches():
        cold_local, cold = side_by_side(
            lambda: drop_caches() and read_all(plain),
            lambda: drop_caches() and read_all(verified),
            repeat,
        )
    return {"local": local, "forebear": through, "cold_local": cold_local, "cold_forebear": cold}


def side_by_side(
    first: Callable[[], object], second: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """The median seconds of ``first`` and of ``second``, run in turn ``repeat`` times."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for action, taken in zip((first, second), times, strict=True):
            start = time.perf_counter()
            action()
            taken.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def drafting(folder: Path, files: int, repeat: int) -> dict[str, float]:
    tree = folder / "tree"
    for i in range(files):
        sub = tree / f"part-{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        (sub / f"f{i:07d}.txt").write_text(f"file {i}\n")
    store = forebear.open(folder / "drafts")
    start = time.perf_counter()
    with forebear.init(project="bench", name="first", store=store) as run:
        version = run.log_artifact(str(tree), name="many")
    first = time.perf_counter() - start
    times = []
    for round_ in range(repeat):
        start = time.perf_counter()
        draft = version.new_draft()
        index = (round_ * 7919) % files
        changed = f"part-{index // 1000:04d}/f{index:07d}.txt"
        draft.remove(changed)
        with draft.new_file(changed) as out:
            out.write(f"changed in round {round_}\n")
        with forebear.init(project="bench", name=f"draft-{round_}", store=store) as run:
            version = run.log_artifact(draft)
        times.append(time.perf_counter() - start)
        assert version.entry(changed).size == len(f"changed in round {round_}\n")
    store.close()
    return {"first": first, "draft": statistics.median(times), "files": float(files)}


def report(read: dict[str, float], draft: dict[str, float], size: int) -> str:
    gib = size / (1 << 30)
    size_text = f"{gib:g} GiB" if gib >= 1 else f"{size >> 20} MiB"
    return "\n".join(
        [
            "## Reading through forebear://, and drafts",
            "",
            "`python benchmarks/reading_bench.py --write docs/benchmarks.md`: one file of "
            f"{size_text} of random bytes logged into a local store (stored in chunks), read "
            "whole in 8 MiB blocks through `fsspec.open('forebear://...')`, every chunk "
            "verified, and from the plain local file, both warm and from the disk (the page "
            "cache emptied before each read), the local file and `forebear://` read in turn, "
            "median of the repeats; "
            "a 1 MiB range from its middle with `cat_file`; and a version of "
            f"{int(draft['files']):,} small files changed by one file with "
            "`new_draft()` / `new_file` / `log_artifact` (median of the repeats).",
            "",
            f"Machine: {machine()}.",
            "",
            "| measure | result |",
            "|---|---|",
            f"| read {size_text}, plain local file | {read['local']:.2f} s "
            f"({size / read['local'] / (1 << 20):,.0f} MiB/s) |",
            f"| read {size_text}, `forebear://` (verified) | {read['forebear']:.2f} s "
            f"({size / read['forebear'] / (1 << 20):,.0f} MiB/s) |",
            f"| `forebear://` speed / local file speed | **{read['ratio']:.0%}** (goal: at "
            "least 70 %) |",
            f"| read {size_text}, `forebear://` from a store in packs (format 3) | "
            f"{read['packs']:.2f} s ({size / read['packs'] / (1 << 20):,.0f} MiB/s), "
            f"**{read['packs_local'] / read['packs']:.0%}** of the local file's speed "
            f"(read in turn with it: {read['packs_local']:.2f} s) |",
            f"| read {size_text} from the disk (page cache emptied), plain local file | "
            f"{read['cold_local']:.2f} s |",
            f"| read {size_text} from the disk (page cache emptied), `forebear://` | "
            f"{read['cold_forebear']:.2f} s |",
            f"| from the disk: `forebear://` speed / local file speed | "
            f"**{read['cold_local'] / read['cold_forebear']:.0%}** |",
            f"| read {size_text} from the disk, `forebear://` from a store in packs | "
            f"{read['cold_packs']:.2f} s, "
            f"**{read['cold_packs_local'] / read['cold_packs']:.0%}** (the local file read in "
            f"turn with it: {read['cold_packs_local']:.2f} s) |",
            f"| 1 MiB range from the middle | {read['range_seconds'] * 1000:.1f} ms, "
            f"{read['range_fetched'] / (1 << 20):.1f} MiB of chunks fetched |",
            f"| first log of {int(draft['files']):,} files | {draft['first']:.1f} s |",
            f"| draft changing 1 file of {int(draft['files']):,}, to the committed version | "
            f"**{draft['draft']:.2f} s** (goal: under 2 s) |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", type=Path, help="update this benchmark's section of the file")
    args = parser.parse_args()
    os.environ.setdefault("FOREBEAR_NO_PROGRESS", "1")
    with tempfile.TemporaryDirectory(prefix="forebear-bench-") as folder:
        read = reading(Path(folder), args.size_mib << 20, args.repeat)
    with tempfile.TemporaryDirectory(prefix="forebear-bench-") as folder:
        draft = drafting(Path(folder), args.files, args.repeat)
    text = report(read, draft, args.size_mib << 20)
    print(text)
    if args.write:
        write_section(args.write, text, MARK)


if __name__ == "__main__":
    main()
