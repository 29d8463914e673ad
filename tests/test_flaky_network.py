"""A flaky network between forebear and S3: a proxy on 127.0.0.1 answers every third request
with 503 Slow Down; transient errors are retried with backoff and the work completes, verified.
A backend that keeps failing is one clear error.

The retry of a refused request is let through, so a request never fails twice in a row: with
concurrent requests sharing the counter, "every third" alone could refuse one request's every
attempt by chance, and the test would then measure luck, not retrying."""

from __future__ import annotations

import http.client
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import forebear

from .test_objects import moto_endpoint  # noqa: F401  (the in-process S3 server fixture)


class FlakyProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        upstream: str,
        fail_every: int | None,
        refuse: Callable[[str, str], bool] | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), FlakyHandler)
        self.refuse = refuse  # (method, path) -> refused every time, retries included
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.fail_every = fail_every
        self.counter = itertools.count(1)
        self.injected = 0
        self.refused: set[tuple[str, str, str]] = set()  # requests whose retry goes through
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FlakyHandler(BaseHTTPRequestHandler):
    server: FlakyProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        request = (self.command, self.path, self.headers.get("Range") or "")
        refused = False
        with self.server.lock:
            number = next(self.server.counter)
            fail = self.server.fail_every is not None and number % self.server.fail_every == 0
            if self.server.refuse is not None and self.server.refuse(self.command, self.path):
                fail = refused = True
                self.server.injected += 1
            elif request in self.server.refused and self.server.fail_every != 1:
                self.server.refused.discard(request)
                fail = False
            elif fail:
                self.server.refused.add(request)
                self.server.injected += 1
        if refused:  # a request the server refuses for good: no retry helps
            self.answer_error(400, b"InvalidRequest", b"refused")
            return
        if fail:
            self.answer_error(503, b"SlowDown", b"injected")
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        # a HEAD answer carries the object's length, not the (empty) body's
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    def answer_error(self, status: int, code: bytes, text: bytes) -> None:
        message = b"<Error><Code>" + code + b"</Code><Message>" + text + b"</Message></Error>"
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(message)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has no body, or the next reply breaks
            self.wfile.write(message)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = relay


@pytest.fixture
def proxy_factory(moto_endpoint: str) -> Iterator[Callable[..., FlakyProxy]]:  # noqa: F811
    proxies: list[FlakyProxy] = []

    def start(
        fail_every: int | None, refuse: Callable[[str, str], bool] | None = None
    ) -> FlakyProxy:
        proxy = FlakyProxy(moto_endpoint, fail_every, refuse)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.shutdown()
        proxy.server_close()


def s3_store(endpoint: str, bucket: str, tmp_path: Path) -> forebear.Store:
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint},
        "skip_instance_cache": True,
    }
    return forebear.Store(
        f"sqlite:///{tmp_path / 'meta.db'}",
        f"s3://{bucket}/store",
        cache_dir=tmp_path / "cache",
        storage_options=options,
    )


@pytest.mark.slow
def test_transient_errors_are_retried_and_the_work_completes(
    proxy_factory: Callable[[int | None], FlakyProxy],
    make_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    setup = proxy_factory(None)
    import s3fs

    s3fs.S3FileSystem(
        key="testing", secret="testing", client_kwargs={"endpoint_url": setup.url},
        skip_instance_cache=True,
    ).mkdir("flaky")  # fmt: skip
    flaky = proxy_factory(3)
    files = {f"part{i}.bin": os.urandom(3000) for i in range(20)}
    with s3_store(flaky.url, "flaky", tmp_path) as store:
        with forebear.init(project="p", store=store) as run:
            version = run.log_artifact(make_tree("d", files), name="ds")
        folder = version.download(tmp_path / "out")
        assert all((folder / name).read_bytes() == data for name, data in files.items())
        assert store.verify() == []
    assert flaky.injected >= 10  # the network really was flaky


def test_a_backend_that_keeps_failing_is_one_clear_error(
    proxy_factory: Callable[[int | None], FlakyProxy], tmp_path: Path
) -> None:
    broken = proxy_factory(1)  # every request fails
    with pytest.raises(forebear.StoreError, match="cannot open the object location"):
        s3_store(broken.url, "flaky", tmp_path)
    assert broken.injected >= 2  # it was retried before giving up


def test_a_pack_upload_that_fails_midway_leaves_no_pack_and_the_log_can_be_retried(
    proxy_factory: Callable[..., FlakyProxy],
    make_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """A pack of 20 MiB goes up in three parts; the server refuses the second. The log
    fails with one clear error, no pack (whole or partial) is visible in the bucket,
    nothing is recorded, and the same log succeeds once the network is back."""
    import s3fs

    healthy = proxy_factory(None)
    bucket = s3fs.S3FileSystem(
        key="testing", secret="testing", client_kwargs={"endpoint_url": healthy.url},
        skip_instance_cache=True,
    )  # fmt: skip
    bucket.mkdir("halfway")
    files = {f"part{i}.bin": os.urandom(512 << 10) for i in range(40)}  # packed, 20 MiB
    data = make_tree("d", files)
    broken = proxy_factory(
        None, lambda method, path: method == "PUT" and "/packs/" in path and "partNumber=2" in path
    )
    with s3_store(broken.url, "halfway", tmp_path) as store:
        store.upgrade()
        with (
            pytest.raises(forebear.StoreError, match="cannot write pack"),
            forebear.init(project="p", store=store) as run,
        ):
            run.log_artifact(data, name="ds")
        assert broken.injected >= 1
        assert not bucket.find("halfway/store/packs")  # nothing published, not even in part
        uploads = bucket.call_s3("list_multipart_uploads", Bucket="halfway")
        assert not uploads.get("Uploads")  # the failed multipart upload was aborted
        assert store.artifacts() == []
    with s3_store(healthy.url, "halfway", tmp_path) as store:
        with forebear.init(project="p", store=store) as run:
            version = run.log_artifact(data, name="ds")
        assert len(bucket.find("halfway/store/packs")) == 2  # the pack and its index copy
        assert store.verify() == []
        assert version.open("part7.bin").read() == files["part7.bin"]


def test_objects_come_from_s3_in_ranged_gets_without_a_head(
    s3_server: dict[str, str], make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """A download from a format 2 store on S3 (SeaweedFS) fetches each object in ranged
    GETs, one for a small object, and sends no HEAD: here every HEAD on an object is
    refused. An empty file, and a file kept whole (9 MiB: three ranges), come back too."""
    import uuid

    import s3fs

    from forebear.chunking import Chunking

    endpoint = s3_server["FOREBEAR_TEST_S3_ENDPOINT"]
    options = {
        "key": s3_server["FOREBEAR_TEST_S3_KEY"],
        "secret": s3_server["FOREBEAR_TEST_S3_SECRET"],
        "skip_instance_cache": True,
    }
    bucket = f"heads-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, **options).mkdir(bucket)
    files = {f"f{i}.bin": os.urandom(3000 + i) for i in range(20)}
    files |= {"empty.txt": b"", "whole.bin": os.urandom(9 << 20), "even.bin": os.urandom(4 << 20)}
    data = make_tree("d", files)

    def open_store(via: str, name: str) -> forebear.Store:
        return forebear.Store(
            f"sqlite:///{tmp_path / 'meta.db'}",
            f"s3://{bucket}/store",
            cache_dir=tmp_path / name,
            storage_options={**options, "client_kwargs": {"endpoint_url": via}},
            chunking=Chunking.around(avg_size=1 << 20, threshold=64 << 20),  # all whole
        )

    with (
        open_store(endpoint, "cache-writer") as store,
        forebear.init(project="p", store=store) as run,
    ):
        run.log_artifact(data, name="ds")
    proxy = FlakyProxy(
        endpoint, None, lambda method, path: method == "HEAD" and "/objects/" in path
    )
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with open_store(proxy.url, "cache-reader") as store:
            folder = store.artifact("ds").download(tmp_path / "out")
            assert store.artifact("ds").open("whole.bin").read() == files["whole.bin"]
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert all((folder / name).read_bytes() == content for name, content in files.items())
    assert proxy.injected == 0  # no HEAD was even tried
