"""How the average chunk size trades deduplication against the number of objects.

    python benchmarks/chunk_params.py                      # 512 MiB table, every size
    python benchmarks/chunk_params.py --scale 0.1 --sizes 64,1024

Builds the table of the speed benchmark (a CSV) and its three later versions: 1 % of rows
appended; 1 % of rows, one block in the middle, each rewritten a little longer (every later
offset shifts); and 1 % of rows rewritten the same way at scattered places. For each
average chunk size it cuts every version with FastCDC (as forebear does: minimum a quarter
of the average, maximum four times it) and reports the bytes of chunks no earlier version
had, the number of chunks, and the speed of cutting and hashing. forebear's defaults were
chosen from this table.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import xxhash
from pyfastcdc.cy import FastCDC

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed_bench import (
    APPENDED,
    EDITED,
    SCATTERED,
    MiB,
    csv_rows,
    lengthen,
    line_offsets,
    line_starts_in_block,
)


def table(scale: float) -> bytes:
    rng = random.Random(2)
    target, parts, size, rows = int(512 * MiB * scale), [], 0, 0
    while size < target:
        part = csv_rows(rng, rows, rows + 10_000)
        parts.append(part)
        size += len(part)
        rows += 10_000
    return b"".join(parts)


def versions(v1: bytes) -> dict[str, bytes]:
    """The speed benchmark's versions of the table, each made from the one before."""
    rows = v1.count(b"\n")
    v2 = v1 + csv_rows(random.Random(3), rows, rows + rows // 100)
    v3 = lengthen(v2, line_offsets(v2, line_starts_in_block(rows)))
    scattered = sorted(random.Random(4).sample(range(1, rows), rows // 100))
    v4 = lengthen(v3, line_offsets(v3, scattered))
    return {"v1": v1, APPENDED: v2, EDITED: v3, SCATTERED: v4}


def cut(chunker: FastCDC, data: bytes) -> list[tuple[str, int]]:
    return [(xxhash.xxh3_128_hexdigest(c.data), c.length) for c in chunker.cut_buf(data)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--sizes", default="64,128,256,512,1024,2048", help="averages, KiB")
    args = parser.parse_args()
    print("building the table...", file=sys.stderr)
    all_versions = versions(table(args.scale))
    v1 = all_versions["v1"]
    print(f"table: {len(v1) / MiB:.0f} MiB\n")
    print(
        "| average chunk | chunks of v1 | cut + hash | " + " | ".join(list(all_versions)[1:]) + " |"
    )
    print("|---" * (3 + len(all_versions) - 1) + "|")
    for kib in (int(s) for s in args.sizes.split(",")):
        avg = kib * 1024
        chunker = FastCDC(avg, min_size=avg // 4, max_size=avg * 4)
        seen: set[str] = set()
        cells = []
        started = time.perf_counter()
        first = cut(chunker, v1)
        speed = len(v1) / (time.perf_counter() - started) / (1 << 30)
        seen.update(d for d, _ in first)
        for name, data in all_versions.items():
            if name == "v1":
                continue
            chunks = cut(chunker, data)
            new = sum(size for digest, size in {d: s for d, s in chunks if d not in seen}.items())
            seen.update(d for d, _ in chunks)
            cells.append(f"{100 * new / len(data):.2f} %")
        print(f"| {kib} KiB | {len(first):,} | {speed:.2f} GiB/s | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
