"""The options of ``genre serve`` (declared once; the command is built from them)."""

from __future__ import annotations

from dataclasses import dataclass

from genre_cli.options import Config, opt

#: Bytes in the "MB" of --max-upload-mb (as nginx's client_max_body_size: MiB).
MB = 2**20


@dataclass(frozen=True)
class ServeConfig(Config):
    """Limits and sizes of the web service.

    Attributes
    ----------
    host, port : str, int
        Where to listen (loopback by default; port 0: any free port).
    max_upload_mb : float > 0
        Largest upload, MB (2**20 bytes); a larger one is refused with 413 before its body is read
        (declared length) or as soon as it passes the limit (chunked).
    max_seconds : float > 0
        Seconds of audio analysed per upload; a longer file is classified on its beginning and
        the answer says so (``truncated``, ``analysed_seconds``).
    workers : int >= 1
        Uploads classified at the same time (inference pool).
    queue : int >= 0
        Further requests admitted (uploading or waiting for a worker); beyond: 503.
    upload_timeout : float > 0
        Seconds a client has to send its upload; slower: 408.
    top_k : int >= 1
        Genres listed when a request does not say.
    """

    host: str = opt(
        "127.0.0.1", "--host", "Address to listen on (loopback by default; any other address is reachable from the network).", type=str
    )
    port: int = opt(8000, "--port", "Port to listen on (0: any free port).", type=int, minimum=0, maximum=65535)
    max_upload_mb: float = opt(
        25.0, "--max-upload-mb", "Largest upload in MB (2^20 bytes); larger: 413, before the body is read.", type=float, above=0
    )
    max_seconds: float = opt(
        600.0,
        "--max-seconds",
        "Seconds of audio analysed per upload; a longer file is classified on its beginning (the answer says so).",
        type=float,
        above=0,
    )
    workers: int = opt(2, "--workers", "Uploads classified at once (inference pool size).", type=int, minimum=1)
    queue: int = opt(
        32, "--queue", "Further requests admitted while the workers are busy; beyond that: 503 (retry later).", type=int, minimum=0
    )
    upload_timeout: float = opt(120.0, "--upload-timeout", "Seconds a client has to send its upload; slower: 408.", type=float, above=0)
    top_k: int = opt(5, "--top-k", "Genres listed when a request does not say.", type=int, minimum=1)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def capacity(self) -> int:
        """Requests admitted at once (classifying, waiting, or uploading)."""
        return self.workers + self.queue
