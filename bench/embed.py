"""Speed and memory of musicnn embedding extraction, against a straightforward port, same run.

(a) straightforward port: for each file, :func:`genre_cli.audio.load` the whole file at 16 kHz
    (soundfile + soxr), :func:`genre_cli.pretrained.preprocess.musicnn_input`, then the plain
    torch layers on ONE patch at a time (no batching, no inference preparation, torch's
    default thread count), sequentially.
(b) ours: :func:`genre_cli.pretrained.embed.embed_files` — streaming decode in a decoder
    thread overlapped with inference workers, the fast front-end (max-pool before ReLU/BN,
    oneDNN blocked tensors), one torch thread per worker.

Both embed the same files with the same shipped MSD model (loaded before timing), decode
included; (b)'s per-file mean embeddings are checked against (a)'s. For each folder
(music-folder: 16 recordings, 35 min, 44.1 kHz stereo Ogg; groove-styles: 410 clips, 3.19 h,
22.05 kHz mono Ogg) it prints audio seconds per wall second ("x realtime") of both, the
ratio, and GMAC/s (musicnn: 1.40 GMAC per 3-s patch). Then the network alone (patches
already computed): ms per patch and GMAC/s, plain vs fast, one thread. Then the peak RSS of
a fresh process embedding a generated one-hour 22.05 kHz stereo WAV, against the same for a
ten-minute file (streaming: memory must not grow with length; measured here, RSS rises over
the first minutes as the allocator warms up, then stays flat: 1 min 339 MB, 5 min 386 MB,
15 min 403 MB, 30 min 404 MB, 60 min 411 MB). Decoding the hour at once instead would hold
635 MB of float32 samples (22.05 kHz stereo) before any resampling.

Targets: (b) >= 60x realtime on every folder; one-hour peak RSS <= ten-minute peak + 50 MB.
The machine is shared: the load average is printed before and after; run when quiet.
Exit status 1 when a target is missed (unless ``--no-check``).

Usage::

    PYTHONPATH=$PWD python bench/embed.py [--folders music-folder groove-styles] [--decoders 2]
        [--workers 2] [--target 60] [--no-rss] [--no-check]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genre_cli.audio import is_audio_path, load  # noqa: E402
from genre_cli.pretrained import load_musicnn  # noqa: E402
from genre_cli.pretrained.embed import embed_files  # noqa: E402
from genre_cli.pretrained.preprocess import musicnn_input  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from predict import hour_file  # noqa: E402  (bench/predict.py: a stereo WAV of tones, noise, silence)

DATA = REPO.parent / "shared" / "data"


def load_line() -> str:
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} ({os.cpu_count()} CPUs)"


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_audio_path(p))


def straightforward(model, files: list[Path]) -> tuple[float, float, int, dict[Path, np.ndarray]]:
    """(wall s, audio s, patches, mean embedding per file) of the one-patch-at-a-time port."""
    import torch

    means, audio_s, n = {}, 0.0, 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for p in files:
            y, sr = load(p, sr=16000)
            x = torch.from_numpy(musicnn_input(y))
            embs = [model.embed(x[i : i + 1])[0] for i in range(len(x))]
            means[p] = torch.cat(embs).mean(0).numpy()
            audio_s += len(y) / sr
            n += len(x)
    return time.perf_counter() - t0, audio_s, n, means


def ours(model, files: list[Path], decoders: int, workers: int) -> tuple[float, float, int, dict[Path, np.ndarray]]:
    means, audio_s, n = {}, 0.0, 0
    t0 = time.perf_counter()
    for res in embed_files(model, files, decoders=decoders, workers=workers):
        if not hasattr(res, "embedding"):
            raise SystemExit(f"ours failed on a file: {res.reason}")
        means[res.path] = res.mean_embedding
        audio_s += res.duration
        n += len(res.embedding)
    return time.perf_counter() - t0, audio_s, n, means


def network_alone(plain, fast, n: int = 24) -> dict[str, float]:
    """ms per patch of the network on random log-mel patches, one torch thread (best of 3)."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.rand(n, 187, 96) * 4
    out = {}
    try:
        with torch.inference_mode():
            for name, model, bs in (("plain, 1 patch per call", plain, 1), ("fast, 2 patches per call", fast, 2)):
                model.embed(x[:bs])
                best = float("inf")
                for _ in range(3):
                    t = time.perf_counter()
                    for i in range(0, n, bs):
                        model.embed(x[i : i + bs])
                    best = min(best, (time.perf_counter() - t) / n)
                out[name] = best
    finally:
        torch.set_num_threads(prev)
    return out


def peak_rss(audio: Path, decoders: int, workers: int) -> tuple[float, float, int]:
    """(peak RSS MB, wall s, patches) of a fresh process embedding ``audio`` with the MSD model."""
    code = (
        "import resource, sys, time\n"
        "from genre_cli.pretrained import load_musicnn\n"
        "from genre_cli.pretrained.embed import embed_files\n"
        "m = load_musicnn('msd')\n"
        "t = time.perf_counter()\n"
        f"(r,) = list(embed_files(m, [sys.argv[1]], decoders={decoders}, workers={workers}))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t, len(r.embedding))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, str(audio)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"embedding {audio} failed: {proc.stderr[-2000:]}")
    kb, dt, n = proc.stdout.split()
    return int(kb) / 1024, float(dt), int(n)


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--folders", nargs="+", default=["music-folder", "groove-styles"], help="folders under the shared data folder (or paths)"
    )
    ap.add_argument("--decoders", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target", type=float, default=60.0, help="x realtime ours must reach on every folder")
    ap.add_argument("--rss-growth-mb", type=float, default=50.0)
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads by default; {load_line()}")
    plain = load_musicnn("msd", inference=False).eval()
    fast = load_musicnn("msd")
    gmac = fast.macs() / 1e9
    ok = True
    for name in args.folders:
        folder = Path(name) if Path(name).is_dir() else DATA / name
        files = audio_files(folder)
        if not files:
            raise SystemExit(f"no audio files in {folder}")
        print(f"\n== {folder.name}: {len(files)} files ({load_line()})")
        tb, ab, nb, mb = straightforward(plain, files)
        print(
            f"straightforward port: {tb:6.1f} s for {ab / 60:6.1f} min of audio, {nb} patches: "
            f"{ab / tb:6.1f}x realtime, {nb * gmac / tb:5.1f} GMAC/s"
        )
        to, ao, no, mo = ours(fast, files, args.decoders, args.workers)
        print(
            f"ours ({args.decoders} decoders, {args.workers} workers): {to:6.1f} s, {no} patches: "
            f"{ao / to:6.1f}x realtime, {no * gmac / to:5.1f} GMAC/s"
        )
        worst = max(float(np.abs(mo[p] - mb[p]).max()) for p in files)
        same = nb == no and abs(ao - ab) < 1e-6 * ab + 1e-3 and worst < 1e-3
        print(
            f"ratio ours / straightforward: {tb / to:.2f}x; same patches and embeddings: {same} "
            f"(max |mean-embedding diff| {worst:.1e}); {load_line()}"
        )
        ok = ok and same
        if ao / to < args.target:
            print(f"MISSED: {ao / to:.1f}x realtime < target {args.target:.0f}x on {folder.name}")
            ok = False

    print(f"\n== network alone, 1 torch thread ({load_line()})")
    for label, s in network_alone(plain, fast).items():
        print(f"{label}: {s * 1e3:6.1f} ms per 3-s patch, {gmac / s:6.1f} GMAC/s, {2.992 / s:6.0f}x realtime per core")

    if not args.no_rss:
        with tempfile.TemporaryDirectory(prefix="genre-embed-bench-") as tmp:
            ten = hour_file(Path(tmp), seconds=600)
            hour = hour_file(Path(tmp), seconds=3600)
            m1, _, _ = peak_rss(ten, args.decoders, args.workers)
            mh, dt, n = peak_rss(hour, args.decoders, args.workers)
            print(
                f"\n== peak RSS: ten-minute file {m1:.0f} MB, one-hour file {mh:.0f} MB (+{mh - m1:.0f} MB, "
                f"target <= +{args.rss_growth_mb:.0f} MB); the hour took {dt:.1f} s, {n} patches, "
                f"{3600 / dt:.0f}x realtime; {load_line()}"
            )
            ok = ok and mh - m1 <= args.rss_growth_mb
    print("\nOK" if ok else "\nFAILED")
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
