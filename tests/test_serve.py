"""``genre serve``: the JSON API against a real uvicorn server on a loopback port, and the
command line. Status codes, JSON shape, limits, cleanup of uploads, a busy pool."""

from __future__ import annotations

import io
import json
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import genre, synth
from serving import multipart, raw_request, read_response, start

httpx = pytest.importorskip("httpx")

from genre_cli import audio  # noqa: E402
from genre_cli.serve import app as web  # noqa: E402
from genre_cli.serve import upload  # noqa: E402
from genre_cli.serve.config import ServeConfig  # noqa: E402

#: Record keys of ``genre predict --format jsonl --timeline``, then the keys serve adds.
RECORD = ["path", "genre", "probability", "duration", "n_windows", "top", "probabilities", "windows"]
ADDED = ["model", "output", "truncated", "analysed_seconds", "file_seconds", "max_seconds"]


def wav_bytes(seconds: float, sr: int = 16000, kind: str = "high", seed: int = 0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, synth(kind, seconds, sr, np.random.default_rng(seed)), sr, format="WAV")
    return buf.getvalue()


def loud_wav() -> bytes:
    """A float WAV whose samples reach 1e17: finite, but overflowing any log-power feature."""
    buf = io.BytesIO()
    sf.write(buf, (np.sin(np.arange(32000) * 0.05) * 1e17).astype(np.float32), 16000, format="WAV", subtype="FLOAT")
    return buf.getvalue()


@pytest.fixture
def server(tiny_model, tmp_path):
    srv = start([tiny_model], tmp_path, max_upload_mb=1.0, max_seconds=30, workers=2, queue=4, top_k=2)
    yield srv
    srv.stop()


def uploads_left(srv) -> list[str]:
    return sorted(str(p.relative_to(srv.service.tmp_root)) for p in srv.service.tmp_root.rglob("*"))


def post(srv, data: bytes, name: str = "clip.wav", timeout: float = 60, **fields) -> httpx.Response:
    return httpx.post(srv.url + "api/predict", files={"file": (name, data, "audio/wav")}, data=fields, timeout=timeout)


def post_head(ctype: str, length: int) -> str:
    return f"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {length}\r\n"


def wait_for(cond, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# ----------------------------------------------------------------------------- shape


def test_models_health_and_the_page(server):
    m = httpx.get(server.url + "api/models").json()
    assert m["default"] == "model" and [x["id"] for x in m["models"]] == ["model"]
    card = m["models"][0]["card"]
    assert card["labels"] == ["high", "low", "noise"] and card["architecture"] == "cnn6" and card["output"] == "softmax"
    assert card["accuracy"][0]["split"] == "validation" and card["accuracy"][0]["level"] == "track"
    formats, extensions = m["limits"].pop("formats"), m["limits"].pop("extensions")
    assert m["limits"] == {"max_upload_bytes": 2**20, "max_upload_mb": 1.0, "max_seconds": 30.0, "top_k": 2, "workers": 2, "queue": 4}
    assert formats[:4] == ["wav", "flac", "ogg", "mp3"] and {"wav", "oga", "aif"} <= set(extensions)
    assert ("m4a" in formats) == ("m4a" in extensions) == audio.ffmpeg_available()  # what this machine decodes
    h = httpx.get(server.url + "healthz").json()
    assert h["status"] == "ok" and h["models"] == ["model"] and h["running"] == 0 and h["capacity"] == 6
    page = httpx.get(server.url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"] and page.headers["x-content-type-options"] == "nosniff"
    for asset in ("static/app.js", "static/style.css"):
        assert httpx.get(server.url + asset).status_code == 200


def test_the_page_loads_nothing_from_elsewhere():
    """No CDN, no external asset: every URL in the page's files is local (the SVG namespace is a name, not a fetch)."""
    import re

    static = Path(web.STATIC)
    names = sorted(p.name for p in static.iterdir())
    assert names == ["app.js", "index.html", "style.css"]
    for p in static.iterdir():
        text = p.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), p.name
        assert "@import" not in text and "url(" not in text.replace("url(data:", ""), p.name


def test_predict_answers_the_jsonl_record_plus_the_timeline(server, tiny_model, tmp_path):
    data = wav_bytes(3.2)
    r = post(server, data, "my song.wav", top_k="2")
    assert r.status_code == 200, r.text
    rec = r.json()
    assert list(rec) == RECORD + ADDED
    assert rec["path"] == "my song.wav" and rec["model"] == "model" and rec["output"] == "softmax"
    assert rec["truncated"] is False and rec["analysed_seconds"] == rec["file_seconds"] == pytest.approx(3.2, abs=1e-3)
    assert len(rec["top"]) == 2 and rec["n_windows"] == len(rec["windows"]) == 6
    # the same record as `genre predict --format jsonl --timeline --top-k 2` on the same file
    (tmp_path / "my song.wav").write_bytes(data)
    cli = genre("predict", tiny_model, tmp_path / "my song.wav", "--format", "jsonl", "--timeline", "--top-k", "2", "--device", "cpu")
    want = json.loads(cli.stdout)
    assert {k: rec[k] for k in RECORD if k != "path"} == {k: want[k] for k in RECORD if k != "path"}
    # top_k defaults to the server's --top-k, is capped at the number of labels
    assert len(post(server, data).json()["top"]) == 2
    assert len(post(server, data, top_k="50").json()["top"]) == 3
    assert uploads_left(server) == []


def test_only_the_first_max_seconds_are_analysed(tiny_model, tmp_path):
    srv = start([tiny_model], tmp_path, max_seconds=1.5)
    try:
        rec = post(srv, wav_bytes(3.0)).json()
    finally:
        srv.stop()
    assert rec["truncated"] is True and rec["analysed_seconds"] == pytest.approx(1.5) and rec["file_seconds"] == pytest.approx(3.0)
    assert rec["duration"] == pytest.approx(1.5) and rec["windows"][-1]["end"] <= 1.5
    assert "only the first 1.5 s were analysed" in rec["note"] and "3 s long" in rec["note"]


# ----------------------------------------------------------------------------- errors


def test_errors_are_json_with_the_right_status(server):
    url = server.url + "api/predict"
    cases = [
        (post(server, b"just some text, not audio", "notes.txt"), 422, "not_audio", "notes.txt: not decodable audio"),
        (post(server, np.random.default_rng(1).bytes(5000), "broken.mp3"), 422, "not_audio", "broken.mp3: not decodable audio"),
        (post(server, b"", "empty.wav"), 422, "not_audio", "empty.wav: empty file"),
        (post(server, wav_bytes(1.0), model="nope"), 404, "unknown_model", "unknown model 'nope'; served: model"),
        (httpx.post(url + "?model=nope", files={"file": ("a.wav", b"x")}), 404, "unknown_model", "unknown model 'nope'"),
        (post(server, wav_bytes(1.0), top_k="0"), 400, "bad_request", "top_k must be an integer >= 1"),
        (post(server, wav_bytes(1.0), top_k="many"), 400, "bad_request", "top_k must be an integer >= 1"),
        (httpx.post(url, data={"model": "model"}, files={"other": ("a.wav", b"x")}), 400, "bad_request", "no 'file' field"),
        (httpx.post(url, content=b"raw bytes", headers={"content-type": "audio/wav"}), 415, "unsupported_media_type", "multipart"),
        (httpx.post(url, content=b"x", headers={"content-type": "multipart/form-data"}), 400, "bad_request", "has no boundary"),
        (post(server, loud_wav(), "loud.wav"), 422, "not_audio", "loud.wav: samples reach 1e+17, far outside [-1, 1]"),
        (httpx.get(url), 405, "method_not_allowed", ""),
        (httpx.get(server.url + "nothing/here"), 404, "not_found", ""),
    ]
    for r, status, code, message in cases:
        body = r.json()
        assert (r.status_code, body["error"], body["status"]) == (status, code, status), body
        assert message in body["message"], body
        assert str(server.service.tmp_root) not in r.text  # no server path leaks into a message
    assert uploads_left(server) == []


def test_too_large_is_refused_before_the_body_is_read(server):
    """A declared Content-Length over the limit: 413 at once, while the client has sent none of the body."""
    limit = server.service.config.max_upload_bytes
    s = raw_request(server.port, post_head("multipart/form-data; boundary=b", limit + upload.OVERHEAD + 1))
    with s:
        status, data = read_response(s)
    assert status == 413 and json.loads(data.partition(b"\r\n\r\n")[2])["error"] == "too_large"
    # the same through an ordinary client
    r = post(server, b"\0" * (limit + upload.OVERHEAD + 10))
    assert r.status_code == 413 and "over the limit of 1 MB" in r.json()["message"]
    assert uploads_left(server) == []


def asgi_post(app, chunks, headers) -> tuple[int, dict, int]:
    """POST ``chunks`` (an iterator of bytes) to ``app``; returns status, JSON body and how many chunks the app read."""
    import anyio

    read = 0
    sent: list[dict] = []

    async def receive():
        nonlocal read
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/api/predict",
        "raw_path": b"/api/predict",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
    }
    anyio.run(app, scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body), read


def test_chunked_upload_is_stopped_at_the_limit(tiny_model, tmp_path):
    """Without Content-Length the bytes are counted as they arrive: the app stops reading just past the limit."""
    service = web.Service(web.load([tiny_model], device="cpu"), ServeConfig(max_upload_mb=0.25), tmp_root=tmp_path)
    app = web.create_app(service)
    head, ctype = multipart({}, "big.wav", b"")
    chunk = 64 * 1024

    def endless():
        yield head[: -len(b"\r\n--genre-test-boundary--\r\n")]
        while True:
            yield b"\0" * chunk

    status, body, read = asgi_post(app, endless(), {"content-type": ctype})
    assert status == 413 and body["error"] == "too_large"
    assert read <= 2 + service.config.max_upload_bytes // chunk  # the head, the chunks within the limit, the one that passed it
    status, body, read = asgi_post(app, iter([]), {"content-type": ctype, "content-length": str(10**9)})
    assert status == 413 and read == 0  # declared: refused without reading anything
    assert list(service.tmp_root.iterdir()) == []


def test_incomplete_body_and_slow_upload(tiny_model, tmp_path):
    service = web.Service(web.load([tiny_model], device="cpu"), ServeConfig(upload_timeout=0.5), tmp_root=tmp_path)
    app = web.create_app(service)
    body, ctype = multipart({}, "a.wav", wav_bytes(1.0))
    status, out, _ = asgi_post(app, iter([body[: len(body) // 2]]), {"content-type": ctype})
    assert status == 400 and "incomplete multipart body" in out["message"]

    (tmp_path / "slow").mkdir()
    srv = start([tiny_model], tmp_path / "slow", upload_timeout=0.5)
    try:
        s = raw_request(srv.port, post_head(ctype, len(body)), body[:100])
        with s:
            status, data = read_response(s)  # the server gives up after 0.5 s
        assert status == 408 and b"upload_timeout" in data
        assert uploads_left(srv) == []
    finally:
        srv.stop()


# ----------------------------------------------------------------------------- files on disk


def test_uploads_are_private_fixed_names_and_deleted(tiny_model, tmp_path):
    """The upload folder is 0700; a file is saved as upload<ext> whatever the client calls it; gone after the answer."""
    srv = start([tiny_model], tmp_path)
    gate = block_inference(srv)
    try:
        assert stat.S_IMODE(srv.service.tmp_root.stat().st_mode) == 0o700
        with ThreadPoolExecutor(1) as ex:
            fut = ex.submit(post, srv, wav_bytes(1.0), "../../../etc/evil name.wav")
            wait_for(lambda: srv.service.running == 1)
            files = [p for p in srv.service.tmp_root.rglob("*") if p.is_file()]
            assert [p.name for p in files] == ["upload.wav"] and files[0].parent.parent == srv.service.tmp_root
            assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
            gate.set()
            r = fut.result(timeout=60)
        assert r.status_code == 200 and r.json()["path"] == "evil name.wav"
        assert uploads_left(srv) == []
        assert not (tmp_path.parent / "etc").exists()
    finally:
        gate.set()
        srv.stop()
    assert not srv.service.tmp_root.exists()  # the whole folder goes at shutdown


def test_client_that_disconnects_leaves_nothing_behind(tiny_model, tmp_path):
    srv = start([tiny_model], tmp_path)
    gate = block_inference(srv)
    try:
        body, ctype = multipart({}, "a.wav", wav_bytes(2.0))
        head = post_head(ctype, len(body))
        # gone in the middle of the upload
        s = raw_request(srv.port, head, body[: len(body) // 2])
        wait_for(lambda: srv.service.in_flight == 1)
        s.close()
        wait_for(lambda: srv.service.in_flight == 0)
        assert uploads_left(srv) == []
        # gone while its upload is being classified
        s = raw_request(srv.port, head, body)
        wait_for(lambda: srv.service.running == 1)
        s.close()
        gate.set()
        wait_for(lambda: srv.service.in_flight == 0)
        assert uploads_left(srv) == []
        assert httpx.get(srv.url + "healthz").json()["status"] == "ok"
    finally:
        gate.set()
        srv.stop()


# ----------------------------------------------------------------------------- the pool


def block_inference(srv) -> threading.Event:
    """Make every served model wait for the returned event before it classifies anything."""
    gate = threading.Event()
    for m in srv.service.models.values():
        clf = m.classifier
        real = clf.predict_proba

        def slow(feats, _real=real, **kw):
            gate.wait(60)
            return _real(feats, **kw)

        clf.predict_proba = slow
    return gate


def test_health_answers_while_the_pool_is_busy_and_a_full_server_says_503(tiny_model, tmp_path):
    srv = start([tiny_model], tmp_path, workers=1, queue=1)
    gate = block_inference(srv)
    try:
        with ThreadPoolExecutor(2) as ex:
            first = ex.submit(post, srv, wav_bytes(1.0, seed=1))
            second = ex.submit(post, srv, wav_bytes(1.0, seed=2))
            wait_for(lambda: srv.service.running == 1 and srv.service.in_flight == 2)
            t0 = time.monotonic()
            h = httpx.get(srv.url + "healthz", timeout=5)
            assert h.status_code == 200 and time.monotonic() - t0 < 2
            assert (h.json()["running"], h.json()["in_flight"]) == (1, 2)
            assert httpx.get(srv.url + "api/models", timeout=5).status_code == 200
            full = post(srv, wav_bytes(1.0), timeout=5)  # workers 1 + queue 1 admitted: the third is refused at once
            assert full.status_code == 503 and full.json()["error"] == "busy" and full.headers["retry-after"] == "5"
            gate.set()
            assert first.result(60).status_code == 200 and second.result(60).status_code == 200
        assert httpx.get(srv.url + "healthz").json()["refused"] == 1
        assert uploads_left(srv) == []
    finally:
        gate.set()
        srv.stop()


def test_idle_connections_do_not_lock_out_health_and_a_stalled_upload_does_not_hold_up_a_stop(tiny_model, tmp_path):
    """Connections that never send a request count against uvicorn's cap, far above the pool's
    (workers 1 + queue 1 here): /healthz is still answered in JSON. A stop waits for a stalled
    upload at most ``SHUTDOWN_SECONDS``, not ``--upload-timeout`` (120 s)."""
    srv = start([tiny_model], tmp_path, workers=1, queue=1, upload_timeout=120)
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(40)]
    try:
        h = httpx.get(srv.url + "healthz", timeout=5)
        assert h.status_code == 200 and h.json()["status"] == "ok"
        body, ctype = multipart({}, "a.wav", wav_bytes(1.0))
        stalled = raw_request(srv.port, post_head(ctype, len(body)), body[:100])
        wait_for(lambda: srv.service.in_flight == 1)
    finally:
        for c in idle:
            c.close()
    srv.server.should_exit = True
    srv.thread.join(timeout=web.SHUTDOWN_SECONDS + 25)
    with stalled:
        status, data = read_response(stalled)
    assert not srv.thread.is_alive(), "the server was still waiting for the stalled upload"
    assert status == 503 and json.loads(data.partition(b"\r\n\r\n")[2])["error"] == "stopping", data[:300]  # JSON, not a bare 500


def test_concurrent_requests_all_answered_and_equal_to_one_at_a_time(server):
    clips = [wav_bytes(2.0, kind=k, seed=i) for i, k in enumerate(["low", "high", "noise", "low", "high", "noise"])]
    alone = [post(server, c).json() for c in clips]
    with ThreadPoolExecutor(6) as ex:  # 6 at once on 2 workers + 4 queued: all admitted
        together = [r.json() for r in ex.map(lambda c: post(server, c), clips)]
    for a, b in zip(alone, together):
        assert b["genre"] == a["genre"] and b["probabilities"] == pytest.approx(a["probabilities"], abs=1e-5)
    assert httpx.get(server.url + "healthz").json()["served"] == 12
    assert uploads_left(server) == []


def test_a_slow_upload_does_not_hold_up_others(server):
    body, ctype = multipart({}, "a.wav", wav_bytes(2.0))
    s = raw_request(server.port, post_head(ctype, len(body)), body[:50])
    try:
        wait_for(lambda: server.service.in_flight == 1)
        assert post(server, wav_bytes(1.0), timeout=30).status_code == 200
        s.sendall(body[50:])
        status, _ = read_response(s)
        assert status == 200
    finally:
        s.close()


# ----------------------------------------------------------------------------- command line


def test_serve_command(tiny_model, monkeypatch):
    calls = []

    def fake_run(service, sock, **kw):
        calls.append((service, sock.getsockname()))
        sock.close()
        service.cleanup()

    monkeypatch.setattr(web, "run", fake_run)
    r = genre("serve", tiny_model, tiny_model, "--port", "0", "--workers", "3", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    service, (host, port) = calls[-1]
    assert host == "127.0.0.1" and port > 0 and "warning" not in r.stderr
    assert list(service.models) == ["model", "model-2"] and service.config.workers == 3
    assert f"serving model (model.h5), model-2 (model.h5) at http://127.0.0.1:{port}/" in r.stderr
    r = genre("serve", tiny_model, "--host", "0.0.0.0", "--port", "0", "--device", "cpu")
    assert r.exit_code == 0 and "warning: listening on 0.0.0.0" in r.stderr and "reachable from the network" in r.stderr


def test_serve_command_needs_a_model(tmp_path, monkeypatch):
    from genre_cli import catalog
    from genre_cli.registry import Registry

    calls = []

    def fake_run(service, sock, **kw):
        calls.append(list(service.models))
        sock.close()
        service.cleanup()

    monkeypatch.setattr(web, "run", fake_run)
    r = genre("serve", "--port", "0", "--device", "cpu")  # the built-in genre model by default
    assert r.exit_code == 0, r.stderr
    assert calls[-1] == ["genres"] and "serving genres (built-in)" in r.stderr
    monkeypatch.setattr(catalog, "BUILTINS", Registry("built-in model"))  # an installation without built-ins
    r = genre("serve")
    assert r.exit_code == 2 and "no built-in genre model is installed" in r.stderr and "genre serve model.h5" in r.stderr
    r = genre("serve", "genres")
    assert r.exit_code == 2 and "unknown model 'genres'" in r.stderr
    r = genre("serve", tmp_path / "missing.h5")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    assert not web.is_loopback("0.0.0.0") and web.is_loopback("::1") and web.is_loopback("localhost") and not web.is_loopback("example.org")


def test_display_name_never_a_path():
    assert upload.display_name("../../etc/passwd") == "passwd"
    assert upload.display_name("C:\\music\\song.mp3") == "song.mp3"
    assert upload.display_name("bad\x00name\n.wav") == "badname.wav"
    assert upload.display_name("") == upload.display_name("a/") == "upload"


def test_the_built_in_models_are_served_with_their_cards(tmp_path):
    """`genre serve genres musicnn-mtt`: the genre model and a tagger, by name; the tagger's
    answer says its scores are independent likelihoods."""
    from genre_cli.pretrained.variants import MTT_TAGS

    srv = start(["genres", "musicnn-mtt"], tmp_path, top_k=3)
    try:
        m = httpx.get(srv.url + "api/models").json()
        assert m["default"] == "genres" and [x["id"] for x in m["models"]] == ["genres", "musicnn-mtt"]
        genres, tagger = (x["card"] for x in m["models"])
        assert genres["builtin"] and genres["task"] == "genre" and genres["accuracy"][0]["data"] == "gtzan-mini"
        assert tagger["task"] == "tags" and tagger["output"] == "sigmoid" and tagger["licence"].startswith("ISC")
        data = wav_bytes(6.5, kind="noise")
        rec = post(srv, data, model="musicnn-mtt").json()
        assert rec["model"] == "musicnn-mtt" and rec["output"] == "sigmoid" and rec["genre"] in MTT_TAGS
        assert len(rec["windows"]) == 3 and abs(sum(rec["probabilities"].values()) - 1) > 0.05
        g = post(srv, data).json()
        assert g["model"] == "genres" and g["output"] == "softmax" and len(g["probabilities"]) == 10
    finally:
        srv.stop()
