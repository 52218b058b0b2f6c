"""genre_cli.download against a loopback HTTP server (no internet)."""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from genre_cli.download import backoff_delay, download, parse_checksum
from genre_cli.errors import DownloadError, UsageError

PAYLOAD = bytes(range(256)) * 800  # 204,800 bytes


class LoopbackServer:
    """Serves ``files`` on 127.0.0.1; records every request's path and headers.

    ``drop_once``: paths whose first GET sends all headers but only half the body, then closes.
    ``ignore_range``: answer 200 with the full body even when a Range is asked for.
    At most ``max_requests`` requests are answered (503 afterwards), each within a 5 s socket timeout.
    """

    def __init__(self, files: dict[str, bytes], *, drop_once: tuple[str, ...] = (), ignore_range: bool = False, max_requests: int = 30):
        self.files = files
        self.drop_once = set(drop_once)
        self.ignore_range = ignore_range
        self.max_requests = max_requests
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                outer.requests.append((self.path, dict(self.headers)))
                if len(outer.requests) > outer.max_requests:
                    self.send_error(503)
                    return
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                if rng and not outer.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    chunk = body[start:]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    chunk = body
                    self.send_response(200)
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if self.path in outer.drop_once:
                    outer.drop_once.discard(self.path)
                    self.wfile.write(chunk[: len(chunk) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def no_sleep(_seconds: float) -> None:
    pass


def test_download_verifies_md5_and_reuses_verified_file(tmp_path: Path):
    dest = tmp_path / "data" / "a.tar.gz"
    with LoopbackServer({"/a.tar.gz": PAYLOAD}) as srv:
        res = download([srv.url("/a.tar.gz")], dest, checksum=md5(PAYLOAD), progress=False, timeout=5, sleep=no_sleep)
        assert res.path == dest and res.downloaded and res.url == srv.url("/a.tar.gz")
        assert res.checksum == md5(PAYLOAD)
        assert dest.read_bytes() == PAYLOAD
        assert not dest.with_suffix(".gz.part").exists()
        # Already present and verified: no request at all, even offline.
        again = download([srv.url("/a.tar.gz")], dest, checksum=md5(PAYLOAD), progress=False, offline=True)
        assert again.downloaded is False and again.checksum == md5(PAYLOAD)
        assert len(srv.requests) == 1


def test_interrupted_download_resumes_with_range(tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    with LoopbackServer({"/a.tar.gz": PAYLOAD}, drop_once=("/a.tar.gz",)) as srv:
        res = download([srv.url("/a.tar.gz")], dest, checksum=md5(PAYLOAD), progress=False, timeout=5, sleep=no_sleep)
    assert res.checksum == md5(PAYLOAD) and res.resumed
    assert dest.read_bytes() == PAYLOAD
    assert len(srv.requests) == 2
    assert "Range" not in srv.requests[0][1]
    assert srv.requests[1][1]["Range"] == f"bytes={len(PAYLOAD) // 2}-"


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    with LoopbackServer({"/a.tar.gz": PAYLOAD}, drop_once=("/a.tar.gz",), ignore_range=True) as srv:
        res = download([srv.url("/a.tar.gz")], dest, checksum=md5(PAYLOAD), progress=False, timeout=5, sleep=no_sleep)
    assert "Range" in srv.requests[1][1]  # asked to resume ...
    assert res.resumed is False  # ... got a 200, so started over
    assert dest.read_bytes() == PAYLOAD and res.checksum == md5(PAYLOAD)


def test_partial_file_from_an_earlier_run_is_resumed(tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    dest.with_suffix(".gz.part").write_bytes(PAYLOAD[:1000])
    with LoopbackServer({"/a.tar.gz": PAYLOAD}) as srv:
        res = download([srv.url("/a.tar.gz")], dest, checksum=md5(PAYLOAD), progress=False, timeout=5, sleep=no_sleep)
    assert srv.requests[0][1]["Range"] == "bytes=1000-"
    assert res.resumed and dest.read_bytes() == PAYLOAD


def test_wrong_checksum_raises_and_removes_the_file(tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    wrong = "md5:" + "0" * 32
    with LoopbackServer({"/a.tar.gz": PAYLOAD}) as srv:
        with pytest.raises(DownloadError) as err:
            download([srv.url("/a.tar.gz")], dest, checksum=wrong, progress=False, timeout=5, sleep=no_sleep)
    msg = str(err.value)
    assert "checksum" in msg and wrong in msg and md5(PAYLOAD) in msg and "a.tar.gz" in msg
    assert "Traceback" not in msg and "\n" not in msg
    assert not dest.exists() and not dest.with_suffix(".gz.part").exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_file_with_wrong_checksum_is_replaced(tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    dest.write_bytes(b"stale")
    with LoopbackServer({"/a.tar.gz": PAYLOAD}) as srv:
        res = download([srv.url("/a.tar.gz")], dest, checksum=md5(PAYLOAD), progress=False, timeout=5, sleep=no_sleep)
    assert res.downloaded and dest.read_bytes() == PAYLOAD


def test_failing_mirror_moves_on_to_the_next(tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    with LoopbackServer({"/good/a.tar.gz": PAYLOAD}) as srv:
        urls = [srv.url("/missing/a.tar.gz"), srv.url("/good/a.tar.gz")]
        res = download(urls, dest, checksum=None, progress=False, timeout=5, sleep=no_sleep)
    assert res.url == urls[1]
    assert [p for p, _ in srv.requests] == ["/missing/a.tar.gz", "/good/a.tar.gz"]  # a 404 is not retried
    # Unknown checksum: the sha256 of what arrived is recorded.
    assert res.checksum == "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()


def test_offline_raises_a_clear_error_without_network(tmp_path: Path):
    with LoopbackServer({"/a.tar.gz": PAYLOAD}) as srv:
        with pytest.raises(DownloadError) as err:
            download([srv.url("/a.tar.gz")], tmp_path / "a.tar.gz", checksum=None, progress=False, offline=True)
        assert srv.requests == []
    msg = str(err.value)
    assert "offline" in msg and srv.url("/a.tar.gz") in msg and "Traceback" not in msg


def test_unreachable_mirrors_retry_with_capped_backoff_then_fail(tmp_path: Path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    urls = [f"http://127.0.0.1:{port}/a.tar.gz", f"http://127.0.0.1:{port}/b.tar.gz"]
    delays: list[float] = []
    with pytest.raises(DownloadError) as err:
        download(urls, tmp_path / "a.tar.gz", checksum=None, progress=False, retries=3, timeout=2, backoff=0.5, sleep=delays.append)
    msg = str(err.value)
    assert urls[0] in msg and urls[1] in msg and "4 attempts" in msg
    assert delays == [0.5, 1.0, 2.0] * 2
    assert "Traceback" not in msg


def test_backoff_is_exponential_and_capped():
    assert [backoff_delay(i, 0.5) for i in (1, 2, 3, 4, 5, 6, 10)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_parse_checksum():
    assert parse_checksum("MD5:" + "A" * 32) == ("md5", "a" * 32)
    assert parse_checksum("b" * 64) == ("sha256", "b" * 64)
    assert parse_checksum(None) is None
    with pytest.raises(UsageError):
        parse_checksum("sha1:abc")
