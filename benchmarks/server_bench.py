"""Logging through a forebear server against logging straight to PostgreSQL + S3, in one run.

    python benchmarks/server_bench.py                        # 20,000 files, 1 GiB, 2 GiB
    python benchmarks/server_bench.py --files 500 --big-mib 64 --rss-mib 128   # quick
    python benchmarks/server_bench.py --write docs/benchmarks.md
    python benchmarks/server_bench.py --packs --write docs/benchmarks.md   # both in format 3

A PostgreSQL and an S3 server (SeaweedFS) are started on 127.0.0.1 (scripts/postgres.sh and
scripts/s3.sh; or the ones FOREBEAR_TEST_PG_URL and FOREBEAR_TEST_S3_* name). Each side gets
an empty database and bucket prefix: "direct" is a Store over them, "server" a Store
through `forebear server` over another pair, with a token. Both log the same FILES small
files (4 KiB of random bytes each) as one version and download it into an empty folder
(with an empty cache), then log one file of BIG MiB (stored in chunks), download it and
read it to its end through `open` (each with an empty cache). Then a file of RSS
MiB is logged through the server while the server process's resident memory is sampled
every 50 ms: its peak is reported. Both stores are made in format 2 (a file per object),
or with --packs in format 3 (small objects in packs; the section "server-bench-packs").
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lineage_bench import machine, write_section

import forebear

REPO = Path(__file__).resolve().parent.parent
MARK = "server-bench"
BUCKET = "forebear-bench"


def start(script: str) -> tuple[dict[str, str], str]:
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / script), "start"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    values = dict(re.findall(r"export (\w+)=(\S+)", out))
    return values, next(v for k, v in values.items() if k.endswith("_DIR"))


def fresh_database(server_url: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"b_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def write_files(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for number in range(count):
        (folder / f"part-{number:06d}.bin").write_bytes(os.urandom(4096))
    return folder


def write_big(path: Path, mib: int) -> Path:
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1 << 20))
    return path


def timed_log(store: forebear.Store, source: Path, name: str) -> float:
    started = time.perf_counter()
    with forebear.init(project="bench", store=store) as run:
        run.log_artifact(source, name=name)
    return time.perf_counter() - started


def timed_read(store: forebear.Store, name: str, path: str) -> float:
    """One file of ``name`` opened and read to its end, as pandas reads a file (the
    store's cache empty)."""
    store.cache.clear()
    started = time.perf_counter()
    with store.artifact(f"bench/{name}").open(path) as stream:
        while stream.read(1 << 20):
            pass
    return time.perf_counter() - started


def timed_get(store: forebear.Store, name: str, destination: Path) -> float:
    """A download of ``name`` into an empty folder (the store's cache empty too)."""
    store.cache.clear()
    started = time.perf_counter()
    store.artifact(f"bench/{name}").download(destination)
    return time.perf_counter() - started


class ServerProcess:
    def __init__(self, db_url: str, objects_url: str, log: Path, *, packs: bool) -> None:
        direct = forebear.Store(db_url, objects_url, format=3 if packs else 2)
        direct.add_user("bench", admin=True)
        self.token = direct.create_token("bench", "bench")
        direct.close()
        with __import__("socket").socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOREBEAR_")}
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "forebear", "server", "--db", db_url,
                 "--objects", objects_url, "--port", str(self.port)],
                stdout=subprocess.DEVNULL, stderr=sink, env=env,
            )  # fmt: skip
        import httpx2 as httpx

        for _ in range(1200):
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")

    def rss(self) -> int:
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", text)
        return int(found.group(1)) * 1024 if found else 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def measure(args: argparse.Namespace, work: Path) -> dict[str, float]:
    pg, pg_dir = (
        ({"FOREBEAR_TEST_PG_URL": os.environ["FOREBEAR_TEST_PG_URL"]}, None)
        if os.environ.get("FOREBEAR_TEST_PG_URL")
        else start("postgres.sh")
    )
    s3, s3_dir = (
        ({k: os.environ[k] for k in os.environ if k.startswith("FOREBEAR_TEST_S3_")}, None)
        if os.environ.get("FOREBEAR_TEST_S3_ENDPOINT")
        else start("s3.sh")
    )
    os.environ.update(
        AWS_ACCESS_KEY_ID=s3["FOREBEAR_TEST_S3_KEY"],
        AWS_SECRET_ACCESS_KEY=s3["FOREBEAR_TEST_S3_SECRET"],
        AWS_ENDPOINT_URL=s3["FOREBEAR_TEST_S3_ENDPOINT"],
        BOTO_CONFIG="/dev/null",
    )
    import s3fs

    fs = s3fs.S3FileSystem(
        skip_instance_cache=True, config_kwargs={"connect_timeout": 5, "read_timeout": 20}
    )
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    deadline = time.monotonic() + 120  # a new bucket takes writes once its volumes are made
    while True:
        try:
            fs.pipe_file(f"{BUCKET}/ready", b"ready")
            break
        except OSError as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"server_bench: the S3 server takes no writes: {error}") from error
            time.sleep(0.2)
    small = write_files(work / "small", args.files)
    big = write_big(work / "big.bin", args.big_mib)
    found: dict[str, float] = {}
    server = None
    try:
        direct = forebear.Store(
            fresh_database(pg["FOREBEAR_TEST_PG_URL"]), f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}",
            cache_dir=work / "direct-cache", format=3 if args.packs else 2,
        )  # fmt: skip
        found["direct_small"] = timed_log(direct, small, "small")
        found["direct_get"] = timed_get(direct, "small", work / "direct-got")
        found["direct_big"] = timed_log(direct, big, "big")
        found["direct_getbig"] = timed_get(direct, "big", work / "direct-got-big")
        found["direct_read"] = timed_read(direct, "big", big.name)
        direct.close()
        server = ServerProcess(
            fresh_database(pg["FOREBEAR_TEST_PG_URL"]), f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}",
            work / "server.log", packs=args.packs,
        )  # fmt: skip
        remote = forebear.Store(server.url, token=server.token, cache_dir=work / "server-cache")
        found["server_small"] = timed_log(remote, small, "small")
        found["server_get"] = timed_get(remote, "small", work / "server-got")
        found["server_big"] = timed_log(remote, big, "big")
        found["server_getbig"] = timed_get(remote, "big", work / "server-got-big")
        found["server_read"] = timed_read(remote, "big", big.name)
        huge = write_big(work / "huge.bin", args.rss_mib)
        peak = [server.rss()]
        found["rss_before"] = peak[0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], server.rss())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            found["server_huge"] = timed_log(remote, huge, "huge")
        finally:
            stop.set()
            sampler.join()
        found["rss_peak"] = peak[0]
        remote.close()
    finally:
        if server is not None:
            server.stop()
        if pg_dir is not None:
            subprocess.run(["bash", str(REPO / "scripts/postgres.sh"), "stop", pg_dir], check=False)
        if s3_dir is not None:
            subprocess.run(["bash", str(REPO / "scripts/s3.sh"), "stop", s3_dir], check=False)
    return found


def report(found: dict[str, float], args: argparse.Namespace) -> str:
    def ratio(key: str) -> str:
        return f"**{found[f'server_{key}'] / found[f'direct_{key}']:.2f}\u00d7**"

    packs = " (format 3, packs)" if args.packs else ""
    return "\n".join(
        [
            f"## Through a server{packs}",
            "",
            f"Measured on {machine()}, PostgreSQL and SeaweedFS (S3) on the same machine. "
            "`python benchmarks/server_bench.py` (see its docstring). Through the server, "
            "bytes go to S3 through presigned URLs and the server hashes each upload before "
            "publishing it.",
            "",
            "| step | direct (PostgreSQL + S3) | through `forebear server` | server / direct |",
            "|---|---|---|---|",
            f"| log {args.files:,} small files (4 KiB) | {found['direct_small']:.1f} s | "
            f"{found['server_small']:.1f} s | {ratio('small')} (goal: at most 1.5\u00d7) |",
            f"| get the {args.files:,} small files into an empty folder | "
            f"{found['direct_get']:.1f} s | {found['server_get']:.1f} s | {ratio('get')} |",
            f"| log one {args.big_mib} MiB file | {found['direct_big']:.1f} s | "
            f"{found['server_big']:.1f} s | {ratio('big')} (goal: at most 1.5\u00d7) |",
            f"| get the {args.big_mib} MiB file into an empty folder | "
            f"{found['direct_getbig']:.1f} s | {found['server_getbig']:.1f} s | "
            f"{ratio('getbig')} |",
            f"| read the {args.big_mib} MiB file to its end (`open`) | "
            f"{found['direct_read']:.1f} s | {found['server_read']:.1f} s | {ratio('read')} |",
            f"| server's resident memory while a client logs {args.rss_mib} MiB | | "
            f"{found['rss_before'] / 1e6:.0f} MB before, "
            f"**{found['rss_peak'] / 1e6:.0f} MB** at most | (goal: under 200 MB) |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--rss-mib", type=int, default=2048)
    parser.add_argument("--packs", action="store_true", help="both stores in format 3")
    parser.add_argument("--write", type=Path, help="update this benchmark's section of the file")
    args = parser.parse_args()
    os.environ.setdefault("FOREBEAR_NO_PROGRESS", "1")
    with tempfile.TemporaryDirectory(prefix="forebear-bench-") as folder:
        found = measure(args, Path(folder))
    text = report(found, args)
    print(text)
    if args.write:
        write_section(args.write, text, f"{MARK}-packs" if args.packs else MARK)


if __name__ == "__main__":
    main()
