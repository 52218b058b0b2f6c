"""The segments artifact (stage ``segment``): decoded audio stored once per track, and windows.

Layout (schema 1)::

    /audio                float32 (or float16/int16) [shape=(total_samples,)]  all decoded tracks,
                          concatenated; each track starts on a chunk boundary (chunks of
                          AUDIO_CHUNK samples; Blosc LZ4 + bit-shuffle unless --no-compress:
                          reading it needs the filter, ``import hdf5plugin`` registers it);
                          sample = value * audio_scale (1/32767 for int16, 2**-14 for
                          float16, 1 for float32)
    /tracks/<column>      track_id, path, label, group, split, fold, offset, n_samples
    /segments/<column>    track (row in /tracks), start (sample in track), length (samples <= win),
                          and the track's track_id, label, group, split, fold (splits stay by track)
    /skipped/<column>     track_id, path, reason (unreadable, empty, NaN/Inf, shorter than a window;
                          tracks the index already marked unusable, with its reason)
    attrs: labels (JSON), sr, win (window length in samples), audio_scale, provenance (JSON)
    params: the SegmentConfig fields, compress, audio_dtype
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.errors import ArtifactError, OptionTypeError, UsageError
from genre_cli.formats import provenance
from genre_cli.formats.provenance import Provenance
from genre_cli.windows import SegmentConfig

KIND = artifacts.register_kind("segment", schema=1, maker="genre segment")

AUDIO_SCALE = 1.0 / 32767.0  #: int16 storage: stored value x AUDIO_SCALE = sample
#: float16 storage holds sample x 2**14: samples down to 3.7e-9 (-169 dBFS) stay normal
#: float16 numbers (unscaled, the 9 % of decoded drum samples below 6.1e-5 were subnormal,
#: losing precision, and numpy converts subnormals ~4x slower); |sample| < 3.998 fits.
F16_SCALE = 2.0**14
#: Largest |sample| each storage dtype holds (None: no limit).
PEAK_LIMIT = {"int16": 1.0, "float16": 65504.0 / F16_SCALE, "float32": None}
#: stored value x STORED_SCALE[dtype] = sample.
STORED_SCALE = {"int16": AUDIO_SCALE, "float16": 1.0 / F16_SCALE, "float32": 1.0}
AUDIO_DTYPES = ("int16", "float16", "float32")
#: Samples per HDF5 chunk of ``/audio``; every track starts on a chunk boundary.
AUDIO_CHUNK = 1 << 16
#: Columns of ``/tracks`` copied from the index (``offset`` and ``n_samples`` are added).
TRACK_COLUMNS = ("track_id", "path", "label", "group", "split", "fold")
#: Parameters of a segments artifact that are not :class:`SegmentConfig` fields.
STORAGE_PARAMS = ("compress", "audio_dtype")


_INT16 = np.dtype(np.int16)


def encode(y: np.ndarray, dtype: np.dtype = _INT16) -> np.ndarray:
    """``y`` as stored values of ``dtype`` (sample / the dtype's audio_scale; int16 rounded),
    zero-padded to a whole number of :data:`AUDIO_CHUNK` chunks. Modifies ``y`` in place."""
    n_chunks = -(-len(y) // AUDIO_CHUNK)
    pcm = np.empty(n_chunks * AUDIO_CHUNK, dtype=dtype)
    pcm[len(y) :] = 0
    scale = np.float32(1.0 / STORED_SCALE[dtype.name])  # 32767, 2**14 or 1
    if scale != 1:
        y *= scale
    if dtype == np.int16:
        np.clip(y, -32767.0, 32767.0, out=y)
        np.rint(y, out=pcm[: len(y)], casting="unsafe")
    else:
        pcm[: len(y)] = y
    return pcm


def audio_filter(compress: bool) -> dict[str, Any]:
    """``create_dataset`` keywords of the stored audio: Blosc LZ4 + bit-shuffle, or raw."""
    if not compress:
        return {}
    import hdf5plugin

    return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE))


def register_filters() -> None:
    """Make HDF5's Blosc filter available to this process (reading compressed /audio)."""
    import hdf5plugin  # noqa: F401  (registers the filters on import)


def params(cfg: SegmentConfig, *, compress: bool, audio_dtype: str) -> dict[str, Any]:
    """The parameters (fingerprinted) of a segments artifact."""
    return {**cfg.to_params(), "compress": bool(compress), "audio_dtype": audio_dtype}


def attrs(*, labels: list[str], cfg: SegmentConfig, audio_dtype: str, prov: Provenance) -> dict[str, Any]:
    """Root attributes of a segments artifact (given to :func:`genre_cli.stage.execute`)."""
    return {"labels": labels, "sr": cfg.sr, "win": cfg.win, "audio_scale": STORED_SCALE[audio_dtype], provenance.ATTR: prov.to_dict()}


def create_audio(f, dtype: np.dtype, *, compress: bool):
    """The empty, growable ``/audio`` dataset (chunks of :data:`AUDIO_CHUNK` samples)."""
    return f.create_dataset("audio", shape=(0,), maxshape=(None,), dtype=dtype, chunks=(AUDIO_CHUNK,), **audio_filter(compress))


def write_tables(f, tracks: dict[str, np.ndarray], segments: dict[str, np.ndarray], skipped: dict[str, np.ndarray]) -> None:
    """``/tracks`` (:data:`TRACK_COLUMNS` + offset, n_samples), ``/segments`` (track, start, length;
    the track's columns are added here) and ``/skipped``."""
    artifacts.write_table(f, "tracks", {k: tracks[k] for k in (*TRACK_COLUMNS, "offset", "n_samples")})
    tr = segments["track"]
    seg_table = {k: np.asarray(segments[k], dtype=np.int64) for k in ("track", "start", "length")}
    seg_table.update({k: tracks[k][tr] for k in ("track_id", "label", "group", "split", "fold")})
    artifacts.write_table(f, "segments", seg_table)
    artifacts.write_table(f, "skipped", {k: np.asarray(v, dtype=object) for k, v in skipped.items()})


@dataclass
class Segments:
    """A segments artifact's tables (not the audio: :func:`read_windows` reads it)."""

    path: Path
    meta: artifacts.ArtifactMeta
    labels: list[str]
    sr: int
    win: int
    tracks: dict[str, np.ndarray]
    segments: dict[str, np.ndarray]
    skipped: dict[str, np.ndarray]
    dataset: str
    config: SegmentConfig
    provenance: Provenance
    audio_scale: float = AUDIO_SCALE  #: stored value x audio_scale = sample in [-1, 1]


def config_of(meta: artifacts.ArtifactMeta) -> SegmentConfig:
    """The :class:`SegmentConfig` a segments artifact was made with (its params less the storage ones)."""
    fields = {k: v for k, v in meta.params.items() if k not in STORAGE_PARAMS}
    try:
        return SegmentConfig.from_params(fields)
    except OptionTypeError as exc:
        raise ArtifactError(f"{meta.path}: malformed segment artifact (TypeError: {exc.message})") from None
    except UsageError as exc:
        raise ArtifactError(f"{meta.path}: invalid segment parameters ({exc.message})") from None


def read(path: str | Path) -> Segments:
    """Read the tables of a segments artifact (MissingInputError: run `genre segment` first)."""
    register_filters()  # so that callers can read the compressed /audio
    with artifacts.open_artifact(path, KIND.stage) as (f, meta):
        audio = artifacts.require_dataset(f, "audio", ndim=1, kind="if")
        config = config_of(meta)
        dataset = str(f.attrs.get("dataset", "dataset"))
        prov = provenance.read(f)
        segs = Segments(
            path=Path(path),
            meta=meta,
            labels=artifacts.get_json_attr(f, "labels", []),
            sr=int(f.attrs["sr"]),
            win=int(f.attrs["win"]),
            tracks=artifacts.read_table(f, "tracks", path=path),
            segments=artifacts.read_table(f, "segments", path=path),
            skipped=artifacts.read_table(f, "skipped", path=path),
            dataset=dataset,
            config=config,
            provenance=prov or Provenance(dataset=dataset),
            audio_scale=float(f.attrs.get("audio_scale", AUDIO_SCALE)),
        )
        _check_tables(segs, len(audio))
    if prov is None:  # written before provenance was recorded: from the index upstream
        segs.provenance = provenance.legacy(path, dataset)
    return segs


def _check_tables(segs: Segments, n_audio: int) -> None:
    """Raise :class:`ArtifactError` unless every segment lies inside its track and every
    track inside ``/audio`` (a file from elsewhere may point anywhere)."""
    where = segs.path
    if segs.sr <= 0 or segs.win <= 0:
        raise ArtifactError(f"{where}: sr and win must be > 0, got sr={segs.sr}, win={segs.win}")
    if not isinstance(segs.labels, list):
        raise ArtifactError(f"{where}: attribute 'labels' must be a JSON list")
    t, s = segs.tracks, segs.segments
    for table, cols in (("tracks", ("offset", "n_samples", "label")), ("segments", ("track", "start", "length"))):
        for col in cols:
            x = (t if table == "tracks" else s).get(col)
            if x is None or x.dtype.kind not in "iu":
                raise ArtifactError(f"{where}: table {table!r} needs an integer column {col!r}")
    off, n = t["offset"].astype(np.int64), t["n_samples"].astype(np.int64)
    if len(off) and (off.min() < 0 or n.min() < 0 or (off + n).max() > n_audio):
        raise ArtifactError(f"{where}: a track lies outside /audio ({n_audio} samples)")
    tr, st, ln = (s[k].astype(np.int64) for k in ("track", "start", "length"))
    if len(tr) and (tr.min() < 0 or tr.max() >= len(off)):
        raise ArtifactError(
            f"{where}: a segment refers to track {int(tr.max() if tr.max() >= len(off) else tr.min())}; there are {len(off)} tracks"
        )
    if len(tr) and (st.min() < 0 or ln.min() <= 0 or ln.max() > segs.win or (st + ln > n[tr]).any()):
        raise ArtifactError(f"{where}: a segment lies outside its track (or is longer than win={segs.win})")
    lab = t["label"]
    if len(lab) and (lab.min() < -1 or lab.max() >= len(segs.labels)):
        raise ArtifactError(
            f"{where}: track labels must index the {len(segs.labels)} labels, found "
            f"{int(lab.max() if lab.max() >= len(segs.labels) else lab.min())}"
        )


def read_windows(audio_ds, segs: Segments, rows: np.ndarray) -> np.ndarray:
    """Float32 windows [shape=(len(rows), win)] for segment ``rows`` (zero-padded where short).

    Reads one contiguous block covering the batch when the windows are dense in it (the
    usual case: consecutive windows of consecutive tracks), else one read per window, so a
    sparse batch (``--first 1`` of long tracks) never reads the audio in between.
    """
    register_filters()
    out = np.zeros((len(rows), segs.win), dtype=np.float32)
    if len(rows) == 0:
        return out
    tr = segs.segments["track"][rows]
    starts = segs.tracks["offset"][tr] + segs.segments["start"][rows]
    lengths = segs.segments["length"][rows]
    lo, hi = int(starts.min()), int((starts + lengths).max())
    if hi - lo <= 2 * int(lengths.sum()):
        block = audio_ds[lo:hi]  # one contiguous read covering the batch
        for j, (s, n) in enumerate(zip(starts, lengths)):
            out[j, :n] = block[s - lo : s - lo + n]
    else:
        for j, (s, n) in enumerate(zip(starts, lengths)):
            out[j, :n] = audio_ds[int(s) : int(s + n)]
    if segs.audio_scale != 1.0:
        out *= segs.audio_scale
    return out
