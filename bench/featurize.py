"""Benchmark: the papers' per-file librosa loop against `genre segment` + `genre featurize`.

On a folder-per-label collection (default ``../shared/data/groove-styles`` relative to the
repository root: 410 tracks, about 3.2 h of 22.05 kHz mono Vorbis), with 3 s windows
(no overlap, last partial window dropped):

(a) **the papers' way**: for each file ``librosa.load(sr=22050)``, cut 3 s windows, and per
    window one librosa call per feature: ``melspectrogram`` (128 bands, then
    ``power_to_db(ref=1.0, amin=1e-10, top_db=None)``), ``zero_crossing_rate``,
    ``spectral_centroid``, ``spectral_contrast``, ``spectral_bandwidth``,
    ``spectral_rolloff``, ``mfcc`` (13, from its own ``melspectrogram`` + dB) and
    ``delta``; then the 93 statistics of Pun & Nazirkhanova 2020 (mean, median, std per descriptor).
(b) ``genre segment --seconds 3 --jobs 2`` then ``genre featurize --mel 128 --handcrafted
    --jobs 2``, each a CLI subprocess (Python start-up and imports included).
(c) mel only: ``genre featurize --mel 128 --jobs 2`` on the same segments; its x-realtime
    counts the segment time too (decoding included).

(b) is run before and after (a) (the machine is shared; both times are printed, the
better one is used). Targets: (a)/(b) >= 5x and (c) >= 2,500x realtime. Exit status 1
when a target is missed, unless ``--no-check``.

Values: (a) and (b) decode the same Vorbis files with libsndfile and neither resamples
(the files are already 22050 Hz mono), and (b) stores the decoded audio as float32 (the
default), so (b) must match (a) to the implementation tolerance: a difference is a failure.
With ``--audio-dtype float16`` or ``int16`` (lossy storage) the differences are printed but
not checked (their rounding noise masks bins far below a frame's peak). For a sample of windows the benchmark prints the
difference of (b) against (a), and of the library run on (a)'s float audio against (a)
(the implementation difference alone), with the three worst handcrafted columns and the
window where each peaks.

Precision: the handcrafted statistics come from a float64 FFT rounded to complex64, as in
librosa (the mel matrices from a float32 FFT, error ~1e-7 of each frame's peak). With the
float32 FFT, the top spectral-contrast band's valley (mean of the 9 smallest magnitudes, the
near-empty bins above the files' ~10.8 kHz low-pass, down to -158 dB below the frame peak)
drowned in rounding and ``spectral_contrast_std`` differed by 1.3e-3 of the column maximum
(``bench/handcrafted_diff.py --float32-stft``); with the float64 FFT every column is < 2e-5.

Usage::

    PYTHONPATH=$PWD python bench/featurize.py [--data DIR] [--limit N] [--no-compress]
        [--audio-dtype int16|float16|float32] [--no-check]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "groove-styles"
SR = 22050
WIN = 3 * SR
TARGET_RATIO = 5.0
TARGET_MEL_RT = 2500.0


def pick_files(data: Path, limit: int | None) -> list[tuple[str, Path]]:
    """(label, path) of the .ogg/.wav/.flac/.mp3 files, round-robin over labels when limited."""
    by_label: dict[str, list[Path]] = {}
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in {".ogg", ".wav", ".flac", ".mp3"})
        if files:
            by_label[d.name] = files
    out: list[tuple[str, Path]] = []
    i = 0
    while any(i < len(v) for v in by_label.values()):
        for label, files in by_label.items():
            if i < len(files):
                out.append((label, files[i]))
        i += 1
    return out[:limit] if limit else out


def seeds_features(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """One window the papers' way: (log-mel (t, 128), 93 statistics)."""
    import librosa

    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=128), ref=1.0, amin=1e-10, top_db=None)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512)
    cent = librosa.feature.spectral_centroid(y=y, sr=sr)
    contrast = librosa.feature.spectral_contrast(y=y, sr=sr)
    bw = librosa.feature.spectral_bandwidth(y=y, sr=sr)
    roll = librosa.feature.spectral_rolloff(y=y, sr=sr)
    mfcc_s = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=128), ref=1.0, amin=1e-10, top_db=None)
    mfcc = librosa.feature.mfcc(S=mfcc_s, sr=sr, n_mfcc=13)
    delta = librosa.feature.delta(mfcc)
    stats = []
    for x in (zcr, cent, contrast, bw, roll):
        stats += [np.mean(x), np.median(x), np.std(x)]
    for m in (mfcc, delta):
        for k in range(13):
            stats += [np.mean(m[k]), np.median(m[k]), np.std(m[k])]
    return mel.T.astype(np.float32), np.asarray(stats, dtype=np.float64)


def run_seeds(files: list[tuple[str, Path]], sample_every: int) -> tuple[float, int, dict]:
    """Time (a); keep every ``sample_every``-th window's features and audio for the comparison."""
    import librosa

    kept: dict[tuple[str, int], tuple] = {}
    n_seg = 0
    t0 = time.perf_counter()
    for _, path in files:
        y, sr = librosa.load(path, sr=SR)
        for s in range(0, len(y) - WIN + 1, WIN):
            mel, hc = seeds_features(y[s : s + WIN], sr)
            if n_seg % sample_every == 0:
                kept[(str(path.resolve()), s)] = (mel, hc, y[s : s + WIN].copy())
            n_seg += 1
    return time.perf_counter() - t0, n_seg, kept


PEAK_MB: dict[str, float] = {}  # command -> peak RSS of the genre process (MB), from /usr/bin/time


def genre(*args: str | Path) -> float:
    """Run ``python -m genre_cli ARGS`` (quiet); seconds of wall time.

    Under ``/usr/bin/time`` when it exists: ``ru_maxrss`` of RUSAGE_CHILDREN in this process
    would report this (large) process's size at fork, not the child's.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "genre_cli", *map(str, args)]
    timer = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        if timer.exists():
            cmd = [str(timer), "-f", "%M", "-o", rss.name, *cmd]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        text = rss.read().strip().splitlines()
    if r.returncode != 0:
        sys.exit(f"genre {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
    if text and text[-1].isdigit():
        key = " ".join(str(a) for a in args[:1] + tuple(a for a in args if str(a).startswith("--mel") or str(a) == "--handcrafted"))
        PEAK_MB[key] = max(PEAK_MB.get(key, 0.0), int(text[-1]) / 1024.0)
    return dt


def run_genre(idx: Path, work: Path, tag: str, compress: bool, audio_dtype: str) -> dict[str, float]:
    seg = work / f"seg-{tag}.h5"
    t_seg = genre(
        "segment",
        idx,
        "--seconds",
        "3",
        "--jobs",
        "2",
        "--force",
        "-o",
        seg,
        "--audio-dtype",
        audio_dtype,
        *([] if compress else ["--no-compress"]),
    )
    t_feat = genre("featurize", seg, "--mel", "128", "--handcrafted", "--jobs", "2", "--force", "-o", work / f"feat-{tag}.h5")
    t_mel = genre("featurize", seg, "--mel", "128", "--jobs", "2", "--force", "-o", work / f"mel-{tag}.h5")
    return {"segment": t_seg, "featurize": t_feat, "mel": t_mel, "seg_path": seg, "feat_path": work / f"feat-{tag}.h5"}


def compare(kept: dict, feat_path: Path, data_root: Path) -> dict[str, float]:
    """Differences on the sampled windows: (b) vs (a), and the library on (a)'s audio vs (a)."""
    from genre_cli.features import FeatureConfig, column_names, compute
    from genre_cli.formats.features import read as load_features

    feats = load_features(feat_path)
    tracks = feats.tracks
    where = {}
    for row, (tr, start) in enumerate(zip(feats.segments["track"], feats.segments["start"])):
        where[(str((data_root / tracks["path"][tr]).resolve()), int(start))] = row
    keys = [k for k in kept if k in where]
    rows = np.array([where[k] for k in keys])
    order = np.argsort(rows)
    keys, rows = [keys[i] for i in order], rows[order]
    mel_b, hc_b = feats.load("mel", rows), feats.load("handcrafted", rows).astype(np.float64)
    mel_a = np.stack([kept[k][0] for k in keys])
    hc_a = np.stack([kept[k][1] for k in keys])
    lib = compute(np.stack([kept[k][2] for k in keys]), FeatureConfig(mel=128, handcrafted=True))
    scale = np.maximum(np.abs(hc_a).max(axis=0), 1e-12)  # per-column scale of the statistic
    cols = column_names("handcrafted", FeatureConfig(handcrafted=True))

    def worst(hc: np.ndarray) -> tuple[float, str]:
        """Max relative difference and where: 'column (window path@start)', worst three columns."""
        rel = np.abs(hc - hc_a) / scale
        top = np.argsort(-rel.max(axis=0))[:3]
        where_ = []
        for j in top:
            path, start = keys[rel[:, j].argmax()]
            where_.append(f"{cols[j]} {rel[:, j].max():.3g} ({Path(path).name}@{start})")
        return float(rel.max()), "; ".join(where_)

    def mel_diff(m):
        d = np.abs(m - mel_a)
        loud = mel_a > -60.0
        return float(np.percentile(d, 99.9)), float(d[loud].max()) if loud.any() else 0.0

    b999, bloud = mel_diff(mel_b)
    l999, lloud = mel_diff(lib["mel"])
    b_rel, b_where = worst(hc_b)
    l_rel, l_where = worst(lib["handcrafted"].astype(np.float64))
    return {
        "n": len(keys),
        "b_mel_p999": b999,
        "b_mel_loud_max": bloud,
        "b_hc_rel_max": b_rel,
        "b_hc_worst": b_where,
        "l_mel_p999": l999,
        "l_mel_loud_max": lloud,
        "l_hc_rel_max": l_rel,
        "l_hc_worst": l_where,
    }


def maxrss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: KiB


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder-per-label collection")
    ap.add_argument("--limit", type=int, default=None, help="only the first N tracks (round-robin over labels)")
    ap.add_argument("--no-compress", action="store_true", help="segment --no-compress (raw audio chunks)")
    ap.add_argument("--audio-dtype", default="float32", choices=("int16", "float16", "float32"), help="segment --audio-dtype")
    ap.add_argument("--sample-every", type=int, default=25, help="compare every N-th window of (a)")
    ap.add_argument("--no-check", action="store_true", help="exit 0 even when a target is missed")
    args = ap.parse_args()
    data = args.data.resolve()
    if not data.is_dir():
        sys.exit(f"no data folder {data} (--data)")
    files = pick_files(data, args.limit)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory(prefix="genre-bench-") as tmp:
        work = Path(tmp)
        root = work / "data"  # the selected files, linked into a folder-per-label tree
        for label, f in files:
            (root / label).mkdir(parents=True, exist_ok=True)
            (root / label / f.name).symlink_to(f)
        idx = work / "idx.h5"
        t_fetch = genre("fetch", "folder", "--from", root, "-o", idx)
        compress = not args.no_compress
        b1 = run_genre(idx, work, "1", compress, args.audio_dtype)
        print(
            f"(b) run 1: segment {b1['segment']:.1f} s, featurize --mel 128 --handcrafted {b1['featurize']:.1f} s, "
            f"featurize --mel 128 {b1['mel']:.1f} s; now (a) ...",
            flush=True,
        )
        t_a, n_a, kept = run_seeds(files, args.sample_every)
        rss_self = maxrss_mb(resource.RUSAGE_SELF)
        b2 = run_genre(idx, work, "2", compress, args.audio_dtype)
        rss_children = maxrss_mb(resource.RUSAGE_CHILDREN)
        # map the symlinked paths back to the real files for the comparison
        kept_real = {(str(Path(p).resolve()), s): v for (p, s), v in kept.items()}
        cmp = compare(kept_real, b1["feat_path"], root)
        from genre_cli.formats.segments import read as load_segments

        segs = load_segments(b1["seg_path"])
        audio_s = float(segs.tracks["n_samples"].sum()) / segs.sr
        n_b = len(segs.segments["track"])
        seg_size = b1["seg_path"].stat().st_size / 1e6

    best = min((b1, b2), key=lambda b: b["segment"] + b["featurize"])
    t_b = best["segment"] + best["featurize"]
    best_mel = min(b1["segment"] + b1["mel"], b2["segment"] + b2["mel"])
    ratio = t_a / t_b
    mel_rt = audio_s / best_mel
    load = os.getloadavg()
    print(f"data: {data} ({len(files)} tracks, {audio_s / 3600:.2f} h of audio, {audio_s:.0f} s); 3 s windows, no overlap")
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared: timings are noisy)")
    print(f"index (genre fetch, not timed in the comparison): {t_fetch:.1f} s")
    print(f"(a) papers' way, librosa per file and per feature: {t_a:8.1f} s  {n_a} windows  {audio_s / t_a:7.0f}x realtime")
    for name, b in (("run 1", b1), ("run 2", b2)):
        print(
            f"(b) genre segment + featurize --mel 128 --handcrafted --jobs 2, {name}: "
            f"{b['segment'] + b['featurize']:6.1f} s  (segment {b['segment']:.1f} s, featurize {b['featurize']:.1f} s)"
        )
    print(
        f"(b) best: {t_b:.1f} s  {n_b} windows  {audio_s / t_b:.0f}x realtime  -> (a)/(b) = {ratio:.1f}x faster (target >= "
        f"{TARGET_RATIO:g}x)"
    )
    for name, b in (("run 1", b1), ("run 2", b2)):
        print(
            f"(c) genre segment + featurize --mel 128 --jobs 2, {name}: {b['segment'] + b['mel']:.1f} s "
            f"(featurize {b['mel']:.1f} s)  {audio_s / (b['segment'] + b['mel']):.0f}x realtime"
        )
    print(f"(c) best: {best_mel:.1f} s  {mel_rt:.0f}x realtime including decoding (target >= {TARGET_MEL_RT:,.0f}x)")
    print(f"segments artifact: {seg_size:.0f} MB ({args.audio_dtype}, {'Blosc LZ4 + bit-shuffle' if compress else 'uncompressed'})")
    print(
        f"peak memory (ru_maxrss): this process, i.e. (a), {rss_self:.0f} MB; "
        + (
            "; ".join(f"genre {k} {v:.0f} MB" for k, v in PEAK_MB.items())
            if PEAK_MB
            else f"largest child {rss_children:.0f} MB (includes this process's size at fork)"
        )
    )
    print(f"values on {cmp['n']} sampled windows (mel in dB; handcrafted as |diff| / max |value| of the column):")
    print(
        f"  (b) vs (a): mel |diff| p99.9 {cmp['b_mel_p999']:.3g} dB, max where (a) > -60 dB {cmp['b_mel_loud_max']:.3g} dB; "
        f"handcrafted max rel {cmp['b_hc_rel_max']:.3g}   [{args.audio_dtype} storage + implementation]"
    )
    print(
        f"  library on (a)'s float audio vs (a): mel p99.9 {cmp['l_mel_p999']:.3g} dB, max where > -60 dB {cmp['l_mel_loud_max']:.3g} dB; "
        f"handcrafted max rel {cmp['l_hc_rel_max']:.3g}   [implementation only]"
    )
    print(f"  worst handcrafted columns, (b) vs (a): {cmp['b_hc_worst']}")
    print(f"  worst handcrafted columns, library vs (a): {cmp['l_hc_worst']}")
    ok_impl = cmp["l_mel_loud_max"] < 0.01 and cmp["l_hc_rel_max"] < 1e-3
    ok_b = cmp["b_mel_loud_max"] < 0.01 and cmp["b_hc_rel_max"] < 1e-3
    ok_values = ok_impl and (ok_b or args.audio_dtype != "float32")
    print(
        f"values: implementation {'same' if ok_impl else 'DIFFERENT'} within mel < 0.01 dB (where > -60 dB), handcrafted < 1e-3; "
        f"(b) {'same' if ok_b else 'differs'} within that tolerance"
        + (
            ""
            if ok_b or args.audio_dtype == "float32"
            else f" ({args.audio_dtype} storage is lossy: its rounding noise masks spectral bins far below a frame's peak;"
            " checked strictly with the default --audio-dtype float32)"
        )
    )
    missed = []
    if ratio < TARGET_RATIO:
        missed.append(f"(a)/(b) {ratio:.1f}x < {TARGET_RATIO:g}x")
    if mel_rt < TARGET_MEL_RT:
        missed.append(f"mel-only {mel_rt:.0f}x realtime < {TARGET_MEL_RT:,.0f}x")
    if not ok_values:
        missed.append("values differ")
    if missed:
        print("MISSED: " + "; ".join(missed))
        return 0 if args.no_check else 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
