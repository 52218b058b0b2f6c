"""Receive one ``multipart/form-data`` upload, streaming, into a private folder, within limits.

The body is parsed as it arrives (python-multipart's streaming parser): the audio part is
written straight to ``<folder>/upload<ext>`` — a fixed name, the extension only when the
client's is a known audio extension (ffmpeg needs it for m4a/aac/opus/wma; libsndfile reads
the content) — and nothing else from the client's file name reaches the disk. Bytes are
counted as they arrive, so a chunked upload (no ``Content-Length``) is stopped as soon as it
passes the limit; a declared ``Content-Length`` over the limit is refused before any of
the body is read (:func:`check_length`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from genre_cli.audio import AUDIO_EXTENSIONS

#: Form-data bytes allowed besides the file itself (boundaries, part headers, small fields).
OVERHEAD = 64 * 1024
#: Largest text field (model name, top_k).
MAX_FIELD = 1024
#: Most parts a form may have.
MAX_PARTS = 8
#: The file part's field name.
FILE_FIELD = "file"


class UploadError(Exception):
    """The upload cannot be accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Upload:
    """What a form held: the saved file (``path``, ``size`` bytes), the client's file name
    (for display only), and the text fields."""

    path: Path | None = None
    size: int = 0
    filename: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def display_name(raw: str) -> str:
    """The client's file name for messages: its last path component, printable, at most 200
    characters (``"upload"`` when empty). Never used on disk."""
    name = re.split(r"[/\\]", raw or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:200] or "upload"


def check_length(headers, limit: int) -> None:
    """Refuse a declared body larger than ``limit`` + :data:`OVERHEAD` bytes (413), or a
    malformed ``Content-Length`` (400), before anything is read."""
    raw = headers.get("content-length")
    if raw is None:
        return
    try:
        n = int(raw)
    except ValueError:
        raise UploadError(400, "bad_request", f"malformed Content-Length {raw[:40]!r}") from None
    if n > limit + OVERHEAD:
        raise UploadError(413, "too_large", f"upload of {n} bytes is over the limit of {_size(limit)}")


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a ``Content-Type`` header (415 unless multipart/form-data, 400
    without a boundary)."""
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise UploadError(415, "unsupported_media_type", "send the audio as multipart/form-data with a 'file' field")
    if not params.get(b"boundary"):
        raise UploadError(400, "bad_request", "malformed multipart/form-data: the Content-Type header has no boundary")
    return params[b"boundary"]


async def receive(chunks: AsyncIterator[bytes], content_type: str | None, folder: Path, *, limit: int) -> Upload:
    """Parse the form from ``chunks``, saving the ``file`` part into ``folder``.

    Parameters
    ----------
    chunks : async iterator of bytes
        The request body as it arrives.
    content_type : str
        The request's ``Content-Type``.
    folder : Path
        Private folder for the file (the caller removes it).
    limit : int
        Largest file, bytes; the body may be :data:`OVERHEAD` larger.

    Raises
    ------
    UploadError
        415 not multipart, 413 over the limit, 400 malformed form, two files, no file part.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    out = Upload()
    state = {"name": "", "is_file": False, "field": bytearray(), "hname": b"", "hvalue": b"", "disp": b"", "parts": 0, "ended": False}
    sink = None

    def on_part_begin():
        state.update(name="", is_file=False, field=bytearray(), disp=b"")
        state["parts"] += 1
        if state["parts"] > MAX_PARTS:
            raise UploadError(400, "bad_request", f"a form of more than {MAX_PARTS} parts")

    def on_header_field(data, start, end):
        state["hname"] += data[start:end]

    def on_header_value(data, start, end):
        state["hvalue"] += data[start:end]

    def on_header_end():
        if state["hname"].lower() == b"content-disposition":
            state["disp"] = state["hvalue"]
        state["hname"] = state["hvalue"] = b""

    def on_headers_finished():
        nonlocal sink
        _, opts = parse_options_header(state["disp"])
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if name == FILE_FIELD:
            if out.path is not None:
                raise UploadError(400, "bad_request", "one file per request")
            out.filename = display_name(opts.get(b"filename", b"").decode("utf-8", "replace"))
            ext = Path(out.filename).suffix.lower()
            out.path = folder / ("upload" + (ext if ext in AUDIO_EXTENSIONS else ""))
            sink = open(out.path, "xb")  # noqa: SIM115 - closed in on_part_end or below
            state["is_file"] = True

    def on_part_data(data, start, end):
        if state["is_file"]:
            out.size += end - start
            if out.size > limit:
                raise UploadError(413, "too_large", f"the file is over the limit of {_size(limit)}")
            sink.write(data[start:end])
        else:
            state["field"] += data[start:end]
            if len(state["field"]) > MAX_FIELD:
                raise UploadError(400, "bad_request", f"form field {state['name']!r} is longer than {MAX_FIELD} bytes")

    def on_end():
        state["ended"] = True

    def on_part_end():
        nonlocal sink
        if state["is_file"]:
            sink.close()
            sink = None
        elif state["name"]:
            out.fields[state["name"]] = state["field"].decode("utf-8", "replace")

    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_end": on_end,
        },
    )
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if total > limit + OVERHEAD:
                raise UploadError(413, "too_large", f"upload over the limit of {_size(limit)}")
            try:
                parser.write(chunk)
            except UploadError:
                raise
            except Exception as exc:  # python-multipart's MultipartParseError and friends
                raise UploadError(400, "bad_request", f"malformed multipart body ({exc})") from None
        try:
            parser.finalize()
        except Exception as exc:
            raise UploadError(400, "bad_request", f"malformed multipart body ({exc})") from None
    finally:
        if sink is not None:
            sink.close()
    if not state["ended"]:
        raise UploadError(400, "bad_request", "incomplete multipart body (no closing boundary)")
    if out.path is None:
        raise UploadError(400, "bad_request", f"no '{FILE_FIELD}' field with the audio in the form")
    return out


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n} bytes"
