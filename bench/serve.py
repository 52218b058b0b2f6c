"""Load test of ``genre serve`` on loopback: concurrent uploads and one slow client, bounded in time.

The server runs as it would for a user: ``genre serve MODEL --port P`` in a subprocess (its
defaults: 2 workers, queue 32, 25 MB, 10 min analysed). Against it, in this process:

* ``--clients`` threads (default 16) each upload ``--uploads`` clips (default 10) one after
  the other: 30-s excerpts cut from the real recordings of ``--folder`` (the shared music
  folder), written as Ogg Vorbis 44.1 kHz stereo, as a user's files are;
* one more client dribbles a 30-s clip's upload over ``--slow-seconds`` (default 20 s) in
  small pieces (a phone on a bad line);
* ``/healthz`` is asked every 0.5 s throughout (the event loop must answer while the pool works).

Reported: answers by status, throughput (uploads/s and audio-seconds/s), latency p50/p95/max,
the slow upload's answer and time, the slowest ``/healthz``, the server's peak RSS (VmHWM) and
CPU seconds, the load average before and after (the machine is shared) and the core count.

Exit status 1 when anything was lost: an upload without an answer (connection error, timeout,
or still running at ``--deadline``), any 5xx, a failed slow upload, a failed ``/healthz``, or a
server that is not up at the end. Bounded: no new upload starts after ``--deadline`` seconds
(default 300), and every request has a timeout.

Without ``--model`` a small cnn6 (128-band log-mel, 3 s windows, hop 1.5 s: the defaults of
``genre run``) is trained for one epoch on the embedded demo data (as bench/predict.py does):
accuracy does not matter here, only the cost of the default model.

Usage::

    python bench/serve.py [--model M.h5] [--folder ../shared/data/music-folder] [--clients 16]
        [--uploads 10] [--workers 2] [--queue Q] [--slow-seconds 20] [--deadline 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_FOLDER = REPO.parent / "shared" / "data" / "music-folder"
CLIP_SECONDS = 30.0


def demo_model(work: Path) -> Path:
    """bench/predict.py's model: cnn6, 128-band log-mel, 3 s windows at a 1.5 s hop, 1 epoch on the demo data."""
    spec = importlib.util.spec_from_file_location("bench_predict", REPO / "bench" / "predict.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.train_demo_model(work)


def cut_clips(folder: Path, out: Path, n: int) -> list[tuple[str, bytes]]:
    """Up to ``n`` 30-s excerpts of the folder's recordings (longest first, from 20 s in), as Ogg Vorbis bytes."""
    import soundfile as sf

    files = sorted((p for p in folder.rglob("*") if p.suffix.lower() in (".ogg", ".wav", ".flac", ".mp3")), key=lambda p: p.name)
    infos = sorted(((sf.info(str(p)).duration, p) for p in files), reverse=True)
    clips = []
    for duration, path in infos:
        if duration < CLIP_SECONDS:
            continue
        starts = [s for s in (20.0, 80.0) if s + CLIP_SECONDS <= duration] or [0.0]
        for start in starts:
            with sf.SoundFile(str(path)) as f:
                f.seek(int(start * f.samplerate))
                data = f.read(int(CLIP_SECONDS * f.samplerate), dtype="float32", always_2d=True)
                sr = f.samplerate
            buf = io.BytesIO()
            sf.write(buf, data, sr, format="OGG", subtype="VORBIS")
            name = f"{path.stem[:40]}-{int(start)}s.ogg"
            (out / name).write_bytes(buf.getvalue())
            clips.append((name, buf.getvalue()))
            if len(clips) == n:
                return clips
    if not clips:
        raise SystemExit(f"no recording of {CLIP_SECONDS:g} s or more in {folder}")
    return clips


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS/VmHWM (kB) and CPU seconds (utime + stime) of ``pid``."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    b = "genre-bench-boundary"
    head = f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: audio/ogg\r\n\r\n'.encode()
    return head + data + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def slow_upload(port: int, name: str, data: bytes, seconds: float) -> tuple[int | None, float, str]:
    """Send one upload in ~100 pieces over ``seconds``; (status or None, wall seconds, error)."""
    body, ctype = multipart(name, data)
    t0 = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=seconds + 120) as s:
            head = f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
            s.sendall(head.encode())
            step = max(1, len(body) // 100)
            for i in range(0, len(body), step):
                s.sendall(body[i : i + step])
                time.sleep(seconds / 100)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        return int(answer.split(b" ", 2)[1]), time.perf_counter() - t0, ""
    except (OSError, ValueError, IndexError) as exc:
        return None, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--uploads", type=int, default=10, help="uploads per client")
    ap.add_argument("--workers", type=int, default=2, help="genre serve --workers")
    ap.add_argument("--queue", type=int, help="genre serve --queue (default: the server's)")
    ap.add_argument("--slow-seconds", type=float, default=20.0)
    ap.add_argument("--deadline", type=float, default=300.0, help="no upload starts after this many seconds")
    ap.add_argument("--timeout", type=float, default=240.0, help="per-request timeout, seconds")
    args = ap.parse_args()
    import httpx

    work = Path(tempfile.mkdtemp(prefix="genre-bench-serve-"))
    model = args.model or demo_model(work)
    clips = cut_clips(args.folder, work, 12)
    size = np.mean([len(c[1]) for c in clips]) / 1e3
    print(f"{len(clips)} clips of {CLIP_SECONDS:g} s (Ogg Vorbis 44.1 kHz stereo, {size:.0f} kB on average) from {args.folder}")
    port = free_port()
    log = open(work / "server.log", "w")  # noqa: SIM115 - open for the server's lifetime
    cmd = [sys.executable, "-m", "genre_cli", "serve", str(model), "--port", str(port), "--workers", str(args.workers), "--device", "cpu"]
    if args.queue is not None:
        cmd += ["--queue", str(args.queue)]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    failures: list[str] = []
    try:
        t0 = time.monotonic()
        while True:
            try:
                if httpx.get(base + "healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() - t0 > 120:
                raise SystemExit(f"the server did not start:\n{(work / 'server.log').read_text()[-3000:]}")
            time.sleep(0.2)
        idle = proc_status(server.pid)
        load_before = os.getloadavg()
        up = time.monotonic() - t0
        print(f"server up in {up:.1f} s (RSS {idle['VmRSS'] / 1024:.0f} MB); {os.cpu_count()} cores, load average {load_before[0]:.2f}")

        stop = threading.Event()
        health: list[float] = []
        health_fail: list[str] = []

        def poll_health():
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    r = httpx.get(base + "healthz", timeout=5)
                    if r.status_code != 200:
                        health_fail.append(f"status {r.status_code}")
                except httpx.HTTPError as exc:
                    health_fail.append(f"{type(exc).__name__}: {exc}")
                health.append(time.perf_counter() - t)
                stop.wait(0.5)

        results: list[tuple[int | None, float, str]] = []  # (status, seconds, error)
        lock = threading.Lock()
        start = time.monotonic()

        def client(i: int):
            with httpx.Client(timeout=args.timeout) as c:
                for j in range(args.uploads):
                    if time.monotonic() - start > args.deadline:
                        with lock:
                            results.append((None, 0.0, "not started: deadline"))
                        continue
                    name, data = clips[(i * args.uploads + j) % len(clips)]
                    t = time.perf_counter()
                    try:
                        r = c.post(base + "api/predict", files={"file": (name, data, "audio/ogg")})
                        ok = r.status_code == 200 and r.json().get("n_windows", 0) > 0
                        out = (r.status_code, time.perf_counter() - t, "" if ok else r.text[:200])
                    except httpx.HTTPError as exc:
                        out = (None, time.perf_counter() - t, f"{type(exc).__name__}: {exc}")
                    with lock:
                        results.append(out)

        hp = threading.Thread(target=poll_health, daemon=True)
        hp.start()
        with ThreadPoolExecutor(args.clients + 1) as ex:
            slow = ex.submit(slow_upload, port, *clips[0], args.slow_seconds)
            for f in [ex.submit(client, i) for i in range(args.clients)]:
                f.result()
            wall = time.monotonic() - start  # the concurrent clients' uploads
            slow_status, slow_s, slow_err = slow.result()
        stop.set()
        hp.join()
        load_after = os.getloadavg()
        st = proc_status(server.pid)
        final = httpx.get(base + "healthz", timeout=10).json() if server.poll() is None else None
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    statuses: dict[str, int] = {}
    for s, _, _ in results:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    ok = [t for s, t, e in results if s == 200 and not e]
    lost = [e for s, _, e in results if s is None]
    errors5 = [(s, e) for s, _, e in results if s is not None and s >= 500]
    other = [(s, e) for s, _, e in results if s is not None and (s < 500 and (s != 200 or e))]
    n_total = args.clients * args.uploads
    lat = np.array(ok) if ok else np.zeros(1)
    print(
        f"\n{n_total} uploads of {CLIP_SECONDS:g} s from {args.clients} concurrent clients + 1 slow upload "
        f"(server --workers {args.workers}): the clients' uploads took {wall:.1f} s wall"
    )
    print(f"answers: {dict(sorted(statuses.items()))}")
    print(f"throughput: {len(ok) / wall:.2f} uploads/s, {len(ok) * CLIP_SECONDS / wall:.1f} audio-seconds/s")
    print(f"latency: p50 {np.percentile(lat, 50):.2f} s, p95 {np.percentile(lat, 95):.2f} s, max {lat.max():.2f} s")
    print(f"slow upload ({args.slow_seconds:g} s of dribbling): {slow_status} after {slow_s:.1f} s {slow_err}")
    print(f"/healthz: {len(health)} asked, slowest {max(health, default=0) * 1000:.0f} ms, {len(health_fail)} failed")
    print(
        f"server: peak RSS {st['VmHWM'] / 1024:.0f} MB (idle {idle['VmRSS'] / 1024:.0f} MB), "
        f"{st['cpu_s'] - idle['cpu_s']:.1f} CPU-s under load ({(st['cpu_s'] - idle['cpu_s']) / max(len(ok), 1):.2f} per upload)"
    )
    print(f"machine: {os.cpu_count()} cores, load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)")
    if final is not None:
        print(f"server after the run: {final['status']}, served {final['served']}, failed {final['failed']}, refused {final['refused']}")

    if lost:
        failures.append(f"{len(lost)} uploads got no answer (first: {lost[0]})")
    if errors5:
        failures.append(f"{len(errors5)} answers were 5xx (first: {errors5[0]})")
    if other:
        failures.append(f"{len(other)} answers were not a classification (first: {other[0]})")
    if len(results) != n_total:
        failures.append(f"{n_total - len(results)} uploads unaccounted for")
    if slow_status != 200:
        failures.append(f"the slow upload failed: {slow_status} {slow_err}")
    if health_fail:
        failures.append(f"/healthz failed {len(health_fail)} times (first: {health_fail[0]})")
    if final is None or final.get("status") != "ok":
        failures.append("the server was not up at the end")
    elif final["served"] != len(ok) + (slow_status == 200):
        failures.append(f"the server counts {final['served']} answered uploads, the clients {len(ok) + (slow_status == 200)}")
    for f in failures:
        print(f"FAIL: {f}")
    if not failures:
        print("OK: every upload answered, no 5xx, the server stayed up")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
