"""Versions with very many entries: time and peak memory of logging and reading back.

    python benchmarks/scale_bench.py                           # 100,000 and 1,000,000 files
    python benchmarks/scale_bench.py --counts 2000,20000       # a quick smoke run
    python benchmarks/scale_bench.py --write docs/benchmarks.md
    python benchmarks/scale_bench.py --packs --file-bytes 1024    # files of 1 KiB, in packs

For each count, builds that many small files (a few bytes each, all different, 1,000 per
folder), then runs forebear's command line on them as child processes: the first log, an
unchanged re-log, `get` into an empty folder (every entry read back and written out), `get`
again over the result (every entry already there) and `verify`. Each step reports wall time
and the child's peak resident memory; memory that stays the same from the smaller count to the
larger is the point.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lineage_bench import machine, write_section
from speed_bench import (
    SETTLE_SECONDS,
    Measure,
    default_forebear,
    describe,
    filesystem,
    run_child,
    run_quiet,
    seconds,
)

MARK = "scale-bench"  # the section of the store in format 2; "scale-bench-packs" for packs
STEPS = ("first log", "unchanged re-log", "get into an empty folder", "get again", "verify")


def build(folder: Path, count: int, size: int) -> None:
    """``count`` different files of ``size`` bytes (0: a few bytes each)."""
    for index in range(count):
        sub = folder / f"d{index // 1000:04d}"
        if index % 1000 == 0:
            sub.mkdir(parents=True)
        line = b"entry %d\n" % index
        data = (line * (size // len(line) + 1))[:size] if size else line
        (sub / f"f{index:07d}.txt").write_bytes(data)


def commands(exe: Path, store: Path, data: Path, out: Path) -> list[list[str]]:
    base = [str(exe), "--objects", str(store)]
    return [
        [*base, "log", "-n", "many", str(data)],
        [*base, "log", "-n", "many", str(data)],
        [*base, "get", "many:v0", str(out)],
        [*base, "get", "many:v0", str(out)],
        [*base, "verify", "many:v0"],
    ]


def run_count(exe: Path, work: Path, count: int, size: int, packs: bool) -> list[Measure]:
    folder = work / f"n{count}"
    data, store, out = folder / "data", folder / "store", folder / "out"
    print(f"{count:,} files: building", file=sys.stderr)
    build(data, count, size)
    made = "3" if packs else "2"  # packs, as a new store is; or a file an object
    run_quiet([str(exe), "--objects", str(store), "init", "--format", made], cwd=folder)
    time.sleep(SETTLE_SECONDS)
    measures = []
    for step, cmd in zip(STEPS, commands(exe, store, data, out), strict=True):
        os.sync()  # nothing left to flush from the step before (forebear's log syncs)
        measure = run_child(cmd, folder, folder / f"{step.replace(' ', '-')}.log")
        measures.append(measure)
        print(f"  {step:26} {describe(measure)}", file=sys.stderr)
        if not measure.ok:
            break
    shutil.rmtree(folder, ignore_errors=True)
    return measures


def report(
    counts: list[int], results: dict[int, list[Measure]], work: Path, size: int, packs: bool
) -> str:
    header = "| step | " + " | ".join(f"{c:,} files" for c in counts) + " |"
    rule = "|---|" + "---|" * len(counts)
    rows = []
    for index, step in enumerate(STEPS):
        cells = []
        for count in counts:
            measures = results[count]
            if index >= len(measures):
                cells.append("not run")
            elif not measures[index].ok:
                cells.append("failed")
            else:
                m = measures[index]
                cells.append(f"{seconds(m.seconds)} s, {m.peak_mib:.0f} MiB")
        rows.append(f"| {step} | " + " | ".join(cells) + " |")
    failures = [
        f"- {count:,} files, {STEPS[i]}:\n\n```\n{m.error}\n```"
        for count, measures in results.items()
        for i, m in enumerate(measures)
        if not m.ok
    ]
    options = (f" --file-bytes {size}" if size else "") + (" --packs" if packs else "")
    content = f"{size:,} bytes each" if size else "a few bytes each"
    into = " in a store in packs (format 3)" if packs else " in a store in format 2"
    parts = [
        "## Versions with very many entries" + (", in packs\n" if packs else "\n"),
        f"`python benchmarks/scale_bench.py{options} --write docs/benchmarks.md` builds "
        f"small files ({content}, all different, 1,000 per folder) and runs forebear's command "
        f"line on them{into}, each step a child process: wall time and peak resident memory "
        "(from `wait4`). "
        "The steps: `forebear log` (first, then unchanged), `forebear get` into an empty "
        "folder, `get` again over it (every file already there), and `forebear verify`.\n",
        f"Machine: {machine()}; workdir filesystem {filesystem(work)}.\n",
        "\n".join([header, rule, *rows]) + "\n",
    ]
    if failures:
        parts += ["### Failures\n", "\n".join(failures) + "\n"]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--counts", default="100000,1000000", help="comma-separated file counts")
    parser.add_argument("--forebear", type=Path, default=default_forebear())
    parser.add_argument("--file-bytes", type=int, default=0, help="each file's size")
    parser.add_argument(
        "--packs", action="store_true", help="a store in format 3 (packs), not format 2"
    )
    parser.add_argument("--workdir", type=Path, help="parent of the scratch folder (default /tmp)")
    parser.add_argument("--write", type=Path, help="update this benchmark's section of this file")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scale-bench-", dir=args.workdir))
    started = time.perf_counter()
    try:
        results = {
            count: run_count(args.forebear, work, count, args.file_bytes, args.packs)
            for count in counts
        }
        body = report(counts, results, work, args.file_bytes, args.packs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(body)
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.write:
        write_section(args.write, body, f"{MARK}-packs" if args.packs else MARK)


if __name__ == "__main__":
    main()
