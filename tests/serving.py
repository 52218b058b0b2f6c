"""Run ``genre serve``'s application on an ephemeral loopback port inside the test process."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="genre serve's tests need the 'serve' extra (pip install -e '.[test]')")

from genre_cli.serve import app as web  # noqa: E402
from genre_cli.serve.config import ServeConfig  # noqa: E402


class Running:
    """A uvicorn server in a thread; ``url`` ends with ``/``; :meth:`stop` shuts it down."""

    def __init__(self, service: web.Service):
        self.service = service
        sock, self.url = web.listen("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self.server = web.uvicorn_server(web.create_app(service), service.config, log_level="warning")
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def private_home(home: Path) -> dict[str, str]:
    """Environment variables that keep a browser's own files (caches, downloads, dconf) in
    ``home``, a test's temporary folder, rather than the user's home."""
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config")}


def start(models: list[str | Path], tmp_path: Path, **config) -> Running:
    """Load ``models`` and serve them with ``ServeConfig(**config)``; uploads under ``tmp_path``."""
    served = web.load([str(m) for m in models], device="cpu")
    return Running(web.Service(served, ServeConfig(**config), tmp_root=tmp_path))


def multipart(fields: dict[str, str], filename: str, data: bytes, boundary: str = "genre-test-boundary") -> tuple[bytes, str]:
    """A multipart/form-data body (text ``fields`` then the ``file``) and its Content-Type."""
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    out += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\nContent-Type: audio/wav\r\n\r\n'.encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def raw_request(port: int, head: str, body: bytes = b"") -> socket.socket:
    """Open a connection and send a request head (and the start of a body); the caller reads or closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(head.encode() + b"\r\n" + body)
    return s


def read_response(s: socket.socket) -> tuple[int, bytes]:
    """Status code and raw bytes of the answer (read until the server closes or 64 KiB)."""
    data = b""
    while len(data) < 65536:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
    return int(data.split(b" ", 2)[1]), data
