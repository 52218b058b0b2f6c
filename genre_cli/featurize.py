"""``featurize`` stage: compute features for every segment, in chunks, optionally in workers.

Which features and how: :class:`~genre_cli.features.FeatureConfig` and the feature table
(:mod:`genre_cli.features.kind`); the layout written: :mod:`genre_cli.formats.features`.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli.errors import ArtifactError, InputError, UsageError
from genre_cli.features import FeatureConfig, column_names, compute, n_frames, output_shape
from genre_cli.features.kind import get as feature_kind
from genre_cli.formats import features as feat_format
from genre_cli.formats import segments as seg_format
from genre_cli.parallel import available_cores, ordered_map, process_context
from genre_cli.stage import StageResult, execute
from genre_cli.testhooks import pause_point
from genre_cli.ui import progress


def run(
    segments_path: str | Path,
    *,
    config: FeatureConfig,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    jobs: int = 1,
    float16: bool = False,
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Compute the features ``config`` selects for every segment of a segments artifact.

    Parameters
    ----------
    segments_path : str or Path
        Segments artifact from ``genre segment``.
    config : FeatureConfig
        Which features and their parameters; ``config.sr`` is taken from the segments file.
        All selected representations share one STFT per segment.
    jobs : int >= 1
        Worker processes (spawned; one BLAS/FFT thread each). The work is cut into fixed
        chunks of :func:`work_rows` segments whatever ``jobs`` is, and results are written
        and reduced in chunk order, so the artifact is bit-identical for any ``jobs``.
    float16 : bool
        Store features as float16 (half the disk; statistics are computed from the float32
        values and stored as float32).

    Returns
    -------
    StageResult
        ``summary``: ``n_segments``, ``shapes`` (name → [n, ...]), ``norm_split`` (``"train"``
        or ``"all"``), ``n_norm_segments``, ``n_skipped_tracks``, ``skipped`` (reasons from
        the segments artifact), ``work_rows``.

    Raises
    ------
    UsageError
        No feature selected, or segments too short for the config.
    InputError
        The segments file has no segments (nothing is written).
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    segs = seg_format.read(segments_path)
    if len(segs.segments["track"]) == 0:  # an empty features file would only fail later, at train
        sk = segs.skipped["reason"]
        raise InputError(
            f"{segs.path}: no segments to featurize"
            + (f" (all {len(sk)} tracks were skipped by `genre segment`, e.g. {sk[0]})" if len(sk) else "")
            + "; nothing was written",
            hint="rerun `genre segment` with shorter windows or --last pad",
        )
    cfg = config.replace(sr=segs.sr).validate()
    names = cfg.names()
    for name in names:  # fail before any work when segments are too short
        output_shape(name, cfg, segs.win)
    params = {"features": cfg.to_params(), "float16": float16}
    upstream = {"segments": (segs.meta.fingerprint, segs.path)}
    slug = "feat-" + "+".join(feature_kind(n).slug_part(cfg) for n in names)

    def build(f) -> dict[str, Any]:
        return _build(f, segs, cfg, names, jobs=jobs, float16=float16, show_progress=show_progress)

    return execute(
        stage=feat_format.KIND.stage,
        params=params,
        upstream=upstream,
        build=build,
        out=out,
        workdir=workdir,
        dataset=segs.dataset,
        slug=slug,
        force=force,
        dry_run=dry_run,
        attrs=feat_format.attrs(
            labels=segs.labels, feature_config=cfg.to_params(), segment_config=segs.config.to_params(), sr=segs.sr, prov=segs.provenance
        ),
    )


#: Most segments per unit of work; fewer when one segment's audio + outputs are large.
CHUNK = 64
_WORK_BYTES = 64 << 20  # budget of one unit of work's audio + outputs, bytes


def work_rows(cfg: FeatureConfig, win: int) -> int:
    """Segments per unit of work: at most :data:`CHUNK`, and few enough that the float32
    windows and outputs of one unit stay within ~64 MB (the library itself works through
    the batch in ~4 MB slices of spectrogram). Depends only on ``cfg`` and the window
    length, never on ``jobs``, so the numbers never depend on the parallelism."""
    per_segment = 4 * win + sum(int(np.prod(output_shape(n, cfg, win))) * 4 for n in cfg.names())
    return int(max(1, min(CHUNK, _WORK_BYTES // per_segment)))


# ---------------------------------------------------------------- worker side
# Each worker process keeps the segment tables and an open handle on the segments file.
_SEG_CACHE: dict[str, tuple[seg_format.Segments, h5py.File]] = {}


def _worker_segments(path: str) -> tuple[seg_format.Segments, h5py.File]:
    if path not in _SEG_CACHE:
        _SEG_CACHE[path] = (seg_format.read(path), h5py.File(path, "r"))
    return _SEG_CACHE[path]


def _release_cache() -> None:
    for _, f in _SEG_CACHE.values():
        f.close()
    _SEG_CACHE.clear()


def _chunk_worker(args: tuple[str, np.ndarray, np.ndarray, dict, bool]) -> dict[str, tuple[np.ndarray, tuple]]:
    """Features of one unit of work: ``{name: (values in the storage dtype, moments of the
    float32 values of the rows in stat_mask)}``."""
    path, rows, stat_mask, cfg_params, float16 = args
    segs, f = _worker_segments(path)
    try:
        y = seg_format.read_windows(f["audio"], segs, rows)
    except OSError as exc:  # a damaged chunk: the input is bad, not the output being written
        raise ArtifactError(
            f"{path}: cannot read /audio of segments {rows[0]}-{rows[-1]} ({exc}); the segments file is damaged",
            hint="rerun `genre segment --force`",
        ) from None
    feats = compute(y, FeatureConfig.from_params(cfg_params), workers=1)
    dtype = np.float16 if float16 else np.float32
    return {k: (v.astype(dtype, copy=False), feat_format.moments(v[stat_mask])) for k, v in feats.items()}


# ---------------------------------------------------------------- main side
def _build(
    f, segs: seg_format.Segments, cfg: FeatureConfig, names: list[str], *, jobs: int, float16: bool, show_progress: bool
) -> dict[str, Any]:
    n = len(segs.segments["track"])
    dtype = np.float16 if float16 else np.float32
    dsets = {
        name: feat_format.create_feature(
            f, name, n=n, shape=output_shape(name, cfg, segs.win), dtype=dtype, columns=column_names(name, cfg)
        )
        for name in names
    }
    tr = segs.segments["track"]
    split = segs.tracks["split"][tr] if n else np.zeros(0, dtype=object)
    stat_mask = split == "train"
    norm_split = "train"
    warnings = []
    if not stat_mask.any():
        stat_mask = np.ones(n, dtype=bool)
        norm_split = "all"
        if n:
            warnings.append("no train split: normalisation statistics are over all segments")
    seg_cfg = segs.config
    if seg_cfg.frames and seg_cfg.frame_hop != cfg.hop_length:
        warnings.append(
            f"segments were cut for {seg_cfg.frames} frames at hop {seg_cfg.frame_hop} but --hop-length is "
            f"{cfg.hop_length}: {n_frames(segs.win, cfg)} frames per segment"
        )
    step = work_rows(cfg, segs.win)
    chunks = [np.arange(s, min(s + step, n)) for s in range(0, n, step)]
    params = cfg.to_params()
    work = ((str(segs.path), rows, stat_mask[rows], params, float16) for rows in chunks)
    moments: dict[str, tuple] = {name: (0, 0.0, 0.0) for name in names}
    executor = None
    if jobs > 1 and len(chunks) > 1:
        executor = ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=process_context())
    try:
        with progress(n, "featurize", enabled=show_progress, unit="segments") as advance:
            for rows, feats in zip(chunks, ordered_map(_chunk_worker, work, jobs=jobs, executor=executor)):
                for name in names:
                    x, mom = feats[name]
                    if x.shape[1:] != dsets[name].shape[1:]:
                        raise ArtifactError(f"feature {name!r} has shape {x.shape[1:]}, expected {dsets[name].shape[1:]}")
                    dsets[name][rows[0] : rows[-1] + 1] = x
                    moments[name] = feat_format.merge(moments[name], mom)
                advance(len(rows))
                pause_point("featurize:chunk")  # test-only (genre_cli.testhooks); inert unless GENRE_TEST_PAUSE_AT is set
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        _release_cache()
    feat_format.write_norm(f, {name: feat_format.norm_stats(moments[name], dsets[name].shape[-1]) for name in names}, split=norm_split)
    feat_format.write_rows(f, {"track": tr, "start": segs.segments["start"], "length": segs.segments["length"]}, segs.tracks)
    sk = segs.skipped
    return {
        "n_segments": n,
        "shapes": {k: list(v.shape) for k, v in dsets.items()},
        "norm_split": norm_split,
        "n_norm_segments": int(stat_mask.sum()),
        "n_skipped_tracks": len(sk["track_id"]),
        "skipped": [f"{p}: {r}" for p, r in zip(sk["path"], sk["reason"])],
        "work_rows": step,
        "warnings": warnings,
    }


def default_jobs() -> int:
    return max(1, min(2, available_cores()))
