"""Throughput and memory of ``genre predict`` against a naive per-file loop, same run, same model.

(a) naive: for each audio file, ``librosa.load`` the whole file at the model's rate,
    cut the model's windows, ``librosa.feature.melspectrogram`` + ``power_to_db`` per
    window, one forward pass per file.
(b) ``genre predict --jobs J`` through the in-process API (:func:`genre_cli.predict.run`):
    streaming decode, featurizing in worker threads, inference batched across files.

Both use the same model (loaded once, before timing) and the same window plan, and
process the same files; (b)'s probabilities are checked against (a)'s. Prints files/s and
audio-seconds/s of both and the ratio (target: >= 3x). Then the peak RSS of
``genre predict`` (a subprocess, ``resource.getrusage(RUSAGE_CHILDREN)``) on a generated
one-hour 22.05 kHz stereo WAV (written once into a temp dir; target < 1 GB).

Without ``--model`` a small cnn6 (128-band log-mel, 3 s windows, hop 1.5 s; the defaults of
``genre run``) is trained for 1 epoch on the embedded demo dataset: accuracy does not
matter here, only the cost of the default CNN's input and forward pass.

The target is judged on that warm, same-process comparison (imports done, model loaded,
for both). What a batch script sees is also printed, not judged: (a') the naive loop and
(b') ``genre predict`` each as a fresh command, Python start-up, imports (librosa, torch)
and model loading included.

Exit status 1 when a target is missed (unless ``--no-check``).

Usage::

    PYTHONPATH=$PWD python bench/predict.py [--folder ../shared/data/music-folder] [--model M.h5]
        [--jobs 2] [--target 3] [--no-rss] [--no-check]
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

from genre_cli import predict as pred  # noqa: E402
from genre_cli.inference import load_classifier  # noqa: E402
from genre_cli.windows import plan_windows  # noqa: E402


def train_demo_model(work: Path) -> Path:
    """cnn6 on 128-band log-mel of 3 s windows (hop 1.5 s) of the demo dataset, 1 epoch."""
    from genre_cli import featurize, fetch, segment, train
    from genre_cli.datasets import FetchOptions
    from genre_cli.features import FeatureConfig
    from genre_cli.training.config import TrainConfig
    from genre_cli.windows import SegmentConfig

    idx = fetch.run("demo", options=FetchOptions(jobs=2, progress=False), out=work / "idx.h5")
    seg = segment.run(idx.path, config=SegmentConfig(seconds=3.0, hop=1.5), out=work / "seg.h5", jobs=2, show_progress=False)
    feat = featurize.run(seg.path, config=FeatureConfig(mel=128), out=work / "feat.h5", jobs=2, show_progress=False)
    return train.run(feat.path, config=TrainConfig(model="cnn6", epochs=1, device="cpu"), out=work / "model.h5", show_progress=False).path


def naive(clf, files: list[Path]) -> tuple[float, float, dict[Path, np.ndarray]]:
    """(seconds, audio seconds, probabilities) of the librosa loop."""
    import librosa

    fc = clf.feature_config
    seg = pred.windows_for(clf)
    ((slot, name),) = clf.inputs.items()
    assert name == "mel", "the naive baseline computes log-mel only"
    out, audio_s = {}, 0.0
    t0 = time.perf_counter()
    for path in files:
        try:
            y, sr = librosa.load(str(path), sr=seg.sr, mono=True)
        except Exception:
            continue
        audio_s += len(y) / sr
        mels = []
        for s, n in plan_windows(len(y), seg):
            w = np.zeros(seg.win, dtype=np.float32)
            w[:n] = y[s : s + n]
            m = librosa.feature.melspectrogram(
                y=w, sr=sr, n_fft=fc["n_fft"], hop_length=fc["hop_length"], n_mels=fc["mel"], fmin=fc["fmin"], fmax=fc["fmax"]
            )
            mels.append(librosa.power_to_db(m, ref=1.0, amin=1e-10, top_db=None).T)
        x = clf.prepare({"mel": np.stack(mels).astype(np.float32)})
        out[path] = clf.proba_prepared(x, batch_size=len(mels)).mean(0)  # one forward pass per file
    return time.perf_counter() - t0, audio_s, out


def ours(clf, files: list[Path], jobs: int) -> tuple[float, float, dict[Path, np.ndarray]]:
    t0 = time.perf_counter()
    res = [r for r in pred.run(clf, files, jobs=jobs) if isinstance(r, pred.Prediction)]
    return time.perf_counter() - t0, sum(r.duration for r in res), {r.path: r.proba for r in res}


def cold_naive(model: Path, folder: Path) -> float:
    """Seconds of (a') the naive loop as a fresh process (imports and model load included)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + '/bench')\n"
        "from pathlib import Path\n"
        "import predict as b\n"
        "clf = b.load_classifier(sys.argv[2], device='cpu')\n"
        "st = b.pred.WalkStats(); files = list(b.pred.iter_inputs([sys.argv[3]], st))\n"
        "b.naive(clf, files)\n"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(REPO), str(model), str(folder)], check=True, capture_output=True)
    return time.perf_counter() - t0


def cold_genre(model: Path, folder: Path, jobs: int) -> float:
    """Seconds of (b') ``genre predict`` as a command (start-up included)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "genre_cli", "predict", str(model), str(folder), "--jobs", str(jobs), "--device", "cpu"],
        check=True,
        capture_output=True,
        env=env,
    )
    return time.perf_counter() - t0


def hour_file(folder: Path, seconds: int = 3600, sr: int = 22050) -> Path:
    """A one-hour stereo WAV (tones, noise bursts, silence), written block by block."""
    import soundfile as sf

    path = folder / f"hour-{seconds}s-{sr}.wav"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=2, subtype="PCM_16") as f:
        for i in range(seconds // 10):
            t = np.arange(10 * sr) / sr
            kind = i % 3
            y = (
                0.3 * np.sin(2 * np.pi * (110 + 40 * (i % 7)) * t)
                if kind == 0
                else 0.2 * rng.standard_normal(len(t))
                if kind == 1
                else np.zeros(len(t))
            )
            f.write(np.stack([y, 0.7 * y], axis=1).astype(np.float32))
    return path


def peak_rss(model: Path, audio: Path, jobs: int) -> tuple[float, float, str]:
    """(peak RSS in MB, wall seconds, output line) of `genre predict` in a fresh child process."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, dt, p.returncode, p.stdout.strip(), sep='\\t')\n"
        "sys.stderr.write(p.stderr[-2000:])\n"
    )
    cmd = [
        sys.executable,
        "-c",
        code,
        sys.executable,
        "-m",
        "genre_cli",
        "predict",
        str(model),
        str(audio),
        "--jobs",
        str(jobs),
        "--device",
        "cpu",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    kb, dt, rc, line = proc.stdout.rstrip("\n").split("\t", 3)
    if rc != "0":
        raise SystemExit(f"genre predict failed on {audio}: {proc.stderr}")
    return int(kb) / 1024, float(dt), line


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folder", type=Path, default=REPO.parent / "shared" / "data" / "music-folder")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--target", type=float, default=3.0, help="minimum speed-up of predict over the naive loop")
    ap.add_argument("--rss-target-mb", type=float, default=1024.0)
    ap.add_argument("--no-rss", action="store_true", help="skip the one-hour memory measurement")
    ap.add_argument("--no-check", action="store_true", help="exit 0 even when a target is missed")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="genre-bench-"))
    model = args.model or train_demo_model(tmp)
    clf = load_classifier(model, device="cpu")
    stats = pred.WalkStats()
    files = list(pred.iter_inputs([str(args.folder)], stats))
    print(
        f"model {model} ({clf.name}, inputs {clf.inputs}, sr {clf.segment_config.get('sr')}); "
        f"{len(files)} audio files in {args.folder} ({stats.ignored} other files ignored); cpu count {os.cpu_count()}"
    )
    list(pred.run(clf, files[:1], jobs=1))  # warm-up: imports, FFT plans, model check
    t_n, a_n, p_n = naive(clf, files)
    t_o, a_o, p_o = ours(clf, files, args.jobs)
    diff = max(float(np.abs(p_n[f] - p_o[f]).max()) for f in p_n) if p_n else float("nan")
    ratio = t_n / t_o
    print(
        f"(a) naive librosa loop     : {len(p_n) / t_n:6.2f} files/s  {a_n / t_n:8.1f} audio-s/s  ({t_n:.1f} s, {a_n / 60:.1f} min of "
        "audio)"
    )
    print(f"(b) genre predict --jobs {args.jobs}: {len(p_o) / t_o:6.2f} files/s  {a_o / t_o:8.1f} audio-s/s  ({t_o:.1f} s)")
    print(f"speed-up (b)/(a): {ratio:.2f}x (target >= {args.target:g}x); max |p_a - p_b| over files {diff:.2e}")
    ok = ratio >= args.target and len(p_o) == len(p_n)
    t_nc, t_oc = cold_naive(model, args.folder), cold_genre(model, args.folder, args.jobs)
    print(
        f"as fresh commands, start-up included (informational): (a') naive {t_nc:.1f} s, (b') genre predict "
        f"--jobs {args.jobs} {t_oc:.1f} s -> {t_nc / t_oc:.2f}x"
    )
    if not args.no_rss:
        audio = hour_file(tmp)
        mb, dt, line = peak_rss(model, audio, args.jobs)
        print(
            f"one-hour file ({audio.stat().st_size / 2**20:.0f} MB 22.05 kHz stereo WAV): peak RSS {mb:.0f} MB "
            f"(target < {args.rss_target_mb:.0f} MB), {dt:.1f} s wall ({3600 / dt:.0f} audio-s/s incl. start-up); {line}"
        )
        ok = ok and mb < args.rss_target_mb
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
