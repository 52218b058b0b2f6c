"""Resumable, verified downloads over HTTP(S) with mirrors, retries and a progress bar.

Only the standard library (``urllib``) does the network work. The protocol:

* a file that is already at ``dest`` and matches the expected checksum is returned as is
  (nothing is downloaded, even with ``offline=True``);
* otherwise each URL is tried in order; the body is streamed to ``dest + ".part"``;
  an interrupted transfer (connection reset, short body, timeout) is retried with
  exponential backoff and resumed with an HTTP ``Range`` request; a server that ignores
  ``Range`` (answers 200 instead of 206) makes the download restart from byte 0;
* a complete ``.part`` is hashed (md5 or sha256) and, when it matches, renamed to ``dest``
  atomically; a mismatch deletes it and moves on to the next mirror;
* when every URL failed, :class:`~genre_cli.errors.DownloadError` says in one paragraph
  what was tried and why each failed.

Why not pooch
-------------
``pooch`` (already installed with librosa) downloads and verifies hashes, but it cannot resume
a partial file: it always fetches the whole file again into a temporary file, without an HTTP
``Range`` request, and it does not try a second mirror after a checksum mismatch (checked in
pooch 1.9's ``HTTPDownloader``). GTZAN is 1.2 GB from mirrors that drop connections; the
resume and mirror behaviour is tested (``tests/test_download.py``, loopback servers), so this
module keeps its ~300 lines of ``urllib``.

Examples
--------
>>> res = download(["https://example.org/a.tar.gz"], Path("data/a.tar.gz"),
...                checksum="md5:0123...", progress=True)      # doctest: +SKIP
>>> res.path, res.checksum                                      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genre_cli.errors import DownloadError, UsageError
from genre_cli.ui import Bar

__all__ = ["DownloadResult", "download", "file_checksum", "parse_checksum", "backoff_delay"]

#: Bytes read per chunk while streaming.
CHUNK = 1 << 16
#: Longest pause between two attempts, seconds.
MAX_BACKOFF = 8.0
#: Sent with every request (some hosts refuse urllib's default agent).
USER_AGENT = "genre-cli/0.1 (+https://pypi.org/project/genre-cli)"

_ALGORITHMS = {"md5": 32, "sha256": 64}


@dataclass(frozen=True)
class DownloadResult:
    """Where a download landed and what it hashes to."""

    path: Path  #: the verified file (``dest``)
    checksum: str  #: ``"md5:<hex>"`` or ``"sha256:<hex>"``, computed from the file
    url: str | None = None  #: the URL that served it; ``None`` when it was already present
    downloaded: bool = False  #: False when an existing verified file was reused
    resumed: bool = False  #: True when a Range request continued a partial file


class _Failure(Exception):
    """One attempt on one URL failed. ``retry``: worth trying the same URL again."""

    def __init__(self, reason: str, *, retry: bool):
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def parse_checksum(checksum: str | None) -> tuple[str, str] | None:
    """``"md5:abc..."`` / ``"sha256:..."`` / bare hex (algorithm from its length) → (algo, hex).

    Raises
    ------
    UsageError
        For an unknown algorithm or a malformed digest.
    """
    if checksum is None or not checksum.strip():
        return None
    text = checksum.strip().lower()
    if ":" in text:
        algo, _, digest = text.partition(":")
    else:
        digest = text
        algo = next((a for a, n in _ALGORITHMS.items() if n == len(digest)), "")
    if algo not in _ALGORITHMS or len(digest) != _ALGORITHMS[algo] or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(f"checksum {checksum!r} is not 'md5:<32 hex digits>' or 'sha256:<64 hex digits>'")
    return algo, digest


def file_checksum(path: Path, algo: str = "sha256") -> str:
    """``"<algo>:<hex>"`` of a file, read in chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{algo}:{h.hexdigest()}"


def backoff_delay(attempt: int, base: float = 0.5, cap: float = MAX_BACKOFF) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): base·2^(attempt-1), capped."""
    return min(cap, base * (2 ** max(0, attempt - 1)))


def download(
    urls: list[str],
    dest: Path,
    *,
    checksum: str | None,
    progress: bool,
    retries: int = 3,
    timeout: float = 30,
    offline: bool = False,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadResult:
    """Download the first URL of ``urls`` that works to ``dest``, verified.

    Parameters
    ----------
    urls : list of str
        Mirrors, tried in order (http:// or https://).
    dest : Path
        Final file. The transfer goes to ``dest.with_suffix(dest.suffix + ".part")``.
    checksum : str or None
        Expected ``"md5:<hex>"`` / ``"sha256:<hex>"`` (bare hex accepted). ``None``: the
        sha256 of what was downloaded is computed and returned.
    progress : bool
        Show a progress bar (bytes, rate, ETA) on stderr.
    retries : int >= 0
        Extra attempts per URL after a transient failure (connection error, timeout,
        interrupted body, HTTP 5xx/429). HTTP 4xx and unknown hosts are not retried.
    timeout : float > 0
        Socket timeout in seconds (connect and each read).
    offline : bool
        Never touch the network: return ``dest`` if present and verified, else fail.
    backoff : float >= 0
        First pause between attempts in seconds; doubled each retry, capped at 8 s.
    sleep : callable
        Used for the pauses (tests pass a no-op).

    Returns
    -------
    DownloadResult

    Raises
    ------
    DownloadError
        Offline with no verified file, every URL failed, or the checksum never matched.
    """
    dest = Path(dest)
    expected = parse_checksum(checksum)
    algo = expected[0] if expected else "sha256"
    part = dest.with_suffix(dest.suffix + ".part")
    notes: list[str] = []

    if dest.is_file():
        got = file_checksum(dest, algo)
        if expected is None or got == f"{algo}:{expected[1]}":
            return DownloadResult(path=dest, checksum=got, url=None, downloaded=False)
        dest.unlink()
        notes.append(f"the existing {dest.name} had checksum {got}, not {algo}:{expected[1]}, and was removed")

    if offline:
        tried = ", ".join(urls) if urls else "(no URL known)"
        earlier = "".join(f"{n}; " for n in notes)
        raise DownloadError(
            f"{earlier}{dest.name} is not in {dest.parent} and downloading is disabled (offline mode); "
            f"it would have been fetched from: {tried}. Download it yourself and pass the file with --from FILE, "
            "or run again without --offline."
        )
    if not urls:
        raise DownloadError(f"no URL to download {dest.name} from")

    dest.parent.mkdir(parents=True, exist_ok=True)
    for url in urls:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            notes.append(f"{url}: unsupported URL scheme {scheme or '(none)'!r}")
            continue
        outcome = _try_url(url, part, retries=retries, timeout=timeout, progress=progress, backoff=backoff, sleep=sleep)
        if isinstance(outcome, str):
            notes.append(f"{url}: {outcome}")
            continue
        resumed = outcome
        got = file_checksum(part, algo)
        if expected is not None and got != f"{algo}:{expected[1]}" and resumed:
            # The partial file may have come from another mirror or an older remote file:
            # one fresh, non-resumed transfer from this URL before calling it bad.
            part.unlink(missing_ok=True)
            outcome = _try_url(url, part, retries=retries, timeout=timeout, progress=progress, backoff=backoff, sleep=sleep)
            if isinstance(outcome, str):
                notes.append(f"{url}: {outcome}")
                continue
            got = file_checksum(part, algo)
        if expected is not None and got != f"{algo}:{expected[1]}":
            part.unlink(missing_ok=True)
            notes.append(f"{url}: downloaded file has checksum {got}, expected {algo}:{expected[1]} (file removed)")
            continue
        os.replace(part, dest)
        return DownloadResult(path=dest, checksum=got, url=url, downloaded=True, resumed=resumed)

    raise DownloadError(f"could not download {dest.name}: " + "; ".join(notes) + ". " + _advice(notes))


def _advice(notes: list[str]) -> str:
    if any("checksum" in n for n in notes):
        return "A checksum mismatch means a mirror serves a different or damaged file; try another source, or a local copy: --from FILE."
    return "Check the network connection (or proxy settings), or download the file yourself and pass it with --from FILE."


def _try_url(
    url: str, part: Path, *, retries: int, timeout: float, progress: bool, backoff: float, sleep: Callable[[float], None]
) -> bool | str:
    """Attempts on one URL. True/False (resumed or not) when ``part`` is complete, else a reason."""
    attempt = 0
    resumed = False
    last = "no attempt made"
    while True:
        attempt += 1
        try:
            resumed = _fetch_once(url, part, timeout=timeout, progress=progress) or resumed
            return resumed
        except _Failure as fail:
            last = fail.reason
            if not fail.retry:
                return last
        if attempt > retries:
            return f"{last} (gave up after {attempt} attempts)"
        sleep(backoff_delay(attempt, backoff))


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool) -> bool:
    """One request; appends to ``part``. Returns True when it resumed a partial file."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # Range not satisfiable: the partial file is unusable (or the remote file changed).
            part.unlink(missing_ok=True)
            raise _Failure("HTTP 416 for a resumed request; partial file discarded", retry=True) from None
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise _Failure(f"HTTP {exc.code} {exc.reason}", retry=retry) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, socket.gaierror):
            raise _Failure(f"host not found ({reason.strerror or reason})", retry=False) from None
        raise _Failure(f"cannot connect ({_describe(reason)})", retry=True) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Failure(f"cannot connect ({_describe(exc)})", retry=True) from None

    with response:
        status = response.status
        if offset and status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Failure(f"server resumed at byte {start}, not {offset}; restarting", retry=True)
            mode, resumed = "ab", True
        elif status == 200:
            offset, mode, resumed = 0, "wb", False  # no Range sent, or the server ignored it: restart
            total = _int_or_none(response.headers.get("Content-Length"))
        else:
            raise _Failure(f"unexpected HTTP status {status}", retry=status >= 500)
        length = _int_or_none(response.headers.get("Content-Length"))
        expected_end = offset + length if length is not None else total
        received = _stream(response, part, mode=mode, offset=offset, total=expected_end, progress=progress, name=part.name[: -len(".part")])
    end = offset + received
    if expected_end is not None and end < expected_end:
        raise _Failure(f"connection closed after {end} of {expected_end} bytes", retry=True)
    return resumed


def _stream(response, part: Path, *, mode: str, offset: int, total: int | None, progress: bool, name: str) -> int:
    received = 0
    bar = Bar(total, name, enabled=progress, kind="bytes", initial=offset)
    try:
        with open(part, mode) as out:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    out.flush()
                    raise _Failure(f"transfer interrupted after {offset + received} bytes ({_describe(exc)})", retry=True) from None
                if not block:
                    break
                out.write(block)
                received += len(block)
                bar(len(block))
    finally:
        bar.close()
    return received


def _content_range(value: str | None) -> tuple[int, int | None]:
    """``"bytes 100-199/200"`` → (100, 200); total ``None`` for ``*``."""
    if not value or not value.lower().startswith("bytes "):
        raise _Failure(f"206 answer without a usable Content-Range ({value!r})", retry=True)
    spec = value[6:].strip()
    rng, _, total = spec.partition("/")
    start = _int_or_none(rng.partition("-")[0])
    if start is None:
        raise _Failure(f"206 answer with a malformed Content-Range ({value!r})", retry=True)
    return start, _int_or_none(total)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(exc: object) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[-1][:200] if text else type(exc).__name__
