"""Run ``genre serve``'s application on an ephemeral loopback port inside the test process."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED_DATA, synth

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


# ----------------------------------------------------------------------------- the page, in a browser
#
# Shared by the Chromium (Selenium) and Firefox (Marionette) tests: both drivers find elements
# with ``find_element(by, value)`` ("id", "css selector") and read ``.text``,
# ``.get_attribute()`` and ``.is_displayed()`` alike.

#: A short real recording (5.3 s solo trumpet, Ogg Vorbis 44.1 kHz stereo; CC licence beside it);
#: ``GENRE_SERVE_CLIP=FILE`` uploads another.
CLIP = Path(os.environ.get("GENRE_SERVE_CLIP") or SHARED_DATA / "music-folder" / "misc" / "sorohanro_-_solo-trumpet-06.hq.ogg")


def upload_clip(tmp_path: Path) -> Path:
    """:data:`CLIP`, or in a checkout without the shared data beside it a generated stereo Ogg."""
    if CLIP.is_file():
        return CLIP
    clip = tmp_path / "generated.ogg"
    y = synth("low", 5.0, 44100, np.random.default_rng(3))
    sf.write(clip, np.stack([y, y], axis=1), 44100, format="OGG", subtype="VORBIS")
    return clip


def keep(shot: Path) -> None:
    """Copy a screenshot to $GENRE_SERVE_SCREENSHOTS when set."""
    dest = os.environ.get("GENRE_SERVE_SCREENSHOTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(dest) / shot.name)


def result_shown(browser, previous: str = "") -> bool:
    """An error is shown, or a result whose status line differs from ``previous``."""
    status = browser.find_element("id", "status").text
    return browser.find_element("id", "error").is_displayed() or (status.startswith("Result:") and status != previous)


def page_result(browser) -> dict:
    """The shown result as the page draws it: top genre, bars, timeline cells, table rows, meta."""
    bars = [
        (g.get_attribute("data-genre"), float(g.get_attribute("data-value"))) for g in browser.find_elements("css selector", "#bars g.bar")
    ]
    return {
        "genre": browser.find_element("id", "top-genre").text,
        "bars": bars,
        "cells": len(browser.find_elements("css selector", "#timeline g.cells rect")),
        "rows": len(browser.find_elements("css selector", "#windows-table tbody tr")),
        "meta": browser.find_element("id", "result-meta").text,
        "status": browser.find_element("id", "status").text,
    }


def check_card(browser, site: Running) -> None:
    """The page shows the served model's card: architecture and measured accuracy."""
    import httpx

    card = browser.find_element("id", "card").text
    served = httpx.get(site.url + "api/models").json()["models"][0]["card"]
    assert served["architecture"] in card and "Measured accuracy" in card and "Test accuracy" in card


def check_upload(page: dict, site: Running, clip: Path, top_k: int) -> None:
    """The page's result for ``clip`` is the API's answer for the same file, drawn in full."""
    import httpx

    with open(clip, "rb") as f:
        api = httpx.post(site.url + "api/predict", files={"file": (clip.name, f)}, data={"top_k": str(top_k)}, timeout=120).json()
    assert page["genre"] == api["genre"]
    assert page["bars"] == [(t["genre"], pytest.approx(t["probability"], abs=1e-6)) for t in api["top"]]
    assert len(page["bars"]) == min(top_k, len(api["probabilities"])) and page["bars"][0][0] == page["genre"]
    assert page["rows"] == api["n_windows"] and 0 < page["cells"] <= api["n_windows"] * top_k
    assert clip.name in page["meta"] and f"{api['n_windows']} windows" in page["meta"]


def upload_and_check(browser, site: Running, clip: Path, wait_result) -> None:
    """Check the card, upload ``clip`` with the page's controls, wait with ``wait_result(browser)``,
    and compare what the page draws with the API's answer (:func:`check_upload`)."""
    check_card(browser, site)
    top_k = int(browser.find_element("id", "topk").get_attribute("value"))
    browser.find_element("id", "file").send_keys(str(clip))
    browser.find_element("id", "classify").click()
    check_upload(wait_result(browser), site, clip, top_k)


def check_result_then_error(browser, tmp_path: Path, wait_result) -> None:
    """A 179.6-s file: its length said as "3 min" (whole seconds carried into minutes) and the
    focus on the answer; then a text file: the error shown, the previous result hidden, the
    focus back on the button."""
    long = tmp_path / "long.wav"
    sf.write(long, synth("low", 179.6, 8000, np.random.default_rng(5)), 8000)
    browser.find_element("id", "file").send_keys(str(long))
    browser.find_element("id", "classify").click()
    page = wait_result(browser)
    assert " · 3 min analysed in " in page["meta"], page["meta"]
    assert browser.execute_script("return document.activeElement.id") == "results-h"
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio")
    browser.find_element("id", "file").send_keys(str(bad))
    browser.find_element("id", "classify").click()
    error = browser.find_element("id", "error")
    deadline = time.monotonic() + 60
    while not error.is_displayed() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "notes.txt: not decodable audio" in error.text and "(422)" in error.text, error.text
    assert not browser.find_element("id", "results").is_displayed()  # not the previous file's answer
    assert browser.execute_script("return document.activeElement.id") == "classify"


def check_recording(page: dict) -> None:
    """A result for a 1.5-10 s recording from the page's microphone button."""
    assert "recording.wav" in page["meta"] and page["bars"] and page["genre"] == page["bars"][0][0]
    seconds = float(page["meta"].split(" · ")[1].split(" s ")[0])
    assert 1.5 <= seconds <= 10, page["meta"]


#: The page's controls in their Tab order.
CONTROLS = ("model", "topk", "file", "classify", "record")


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
