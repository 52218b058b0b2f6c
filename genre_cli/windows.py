"""Windows: how a track is cut into fixed-length segments.

:class:`SegmentConfig` declares the window options (``genre segment``, ``genre run``);
:func:`window_starts` gives the windows of a track (the ``segment`` stage);
:func:`plan_windows` and :class:`Windower` give the windows of a whole file as it streams in
(``predict``): every full window on the model's hop grid, plus one end-aligned window.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from genre_cli.errors import UsageError
from genre_cli.options import Config, Option, opt
from genre_cli.papers import SCHRADER_2021, ZHANG_2022

POLICIES = ("fixed", "random", "first")


@dataclass(frozen=True)
class SegmentConfig(Config):
    """How tracks are cut into windows.

    Attributes
    ----------
    sr : int > 0
        Sample rate (Hz) audio is resampled to.
    seconds : float > 0
        Window length in seconds (ignored when ``frames`` is set; on the command line, a
        ``--seconds`` other than the default with ``--frames`` is refused).
    hop : float > 0 or None
        Hop between window starts in seconds; ``None`` = ``seconds`` (no overlap). With the
        ``random`` policy it does not place the training windows; it is the hop of the grid
        ``predict`` classifies a file with (:meth:`grid`).
    frames, frame_hop : int
        Window length given in STFT frames instead (Yang & Zhang 2019: 128 frames at hop
        512): ``(frames - 1) * frame_hop`` samples, which a centred STFT with that hop turns
        into exactly ``frames`` frames.
    policy : {"fixed", "random", "first"}
        ``fixed``: every window at the hop; ``random``: ``count`` non-overlapping windows per
        track at random, seeded positions (F. Zhang 2022: 5 x 3 s); ``first``: the first
        ``count`` fixed windows (Schrader et al. 2021: 10 x 5 s). On the command line:
        ``--random K`` / ``--first N``.
    count : int
        Windows per track for ``random`` / ``first``.
    last : {"drop", "pad"}
        A last partial window (or a track shorter than one window) is dropped, or kept and
        zero-padded to full length.
    seed : int
        Seed of the random policy (per track: hashed with the track id).
    """

    sr: int = opt(22050, "--sr", "Sample rate (Hz) to resample to.", type=int, minimum=1)
    seconds: float = opt(3.0, "--seconds", "Window length in seconds.", type=float)
    hop: float | None = opt(
        None,
        "--hop",
        "Hop between windows in seconds [default: --seconds, no overlap]; with --random, the hop of the windows "
        "`genre predict` classifies a whole file with (the training windows are random).",
        type=float,
        above=0,
        nullable=True,
    )
    frames: int = opt(0, "--frames", "Window length in STFT frames instead (e.g. 128), at --frame-hop.", type=int, minimum=0)
    frame_hop: int = opt(512, "--frame-hop", "STFT hop (samples) used by --frames.", type=int, minimum=1)
    policy: str = opt("fixed", None, "Window policy.", type=str, choices=POLICIES)
    count: int = opt(0, None, "Windows per track for the random and first policies.", type=int, minimum=0)
    last: str = opt("drop", "--last", "Last partial window: drop | pad (zero-padded).", type=str, choices=("drop", "pad"))
    seed: int = opt(0, "--seed", "Seed of --random.", type=int)

    #: ``--random K`` and ``--first N`` set ``policy`` and ``count`` (see :meth:`from_cli`).
    CLI_ONLY: ClassVar[tuple[Option, ...]] = (
        Option(
            "random",
            int,
            0,
            f"K non-overlapping windows per track at random (seeded) positions ({ZHANG_2022.short}: 5).",
            flag="--random",
            minimum=0,
        ),
        Option("first", int, 0, f"Only the first N windows of each track ({SCHRADER_2021.short}: 10).", flag="--first", minimum=0),
    )

    def check(self) -> None:
        if self.frames == 0 and self.seconds <= 0:
            raise UsageError("window length must be > 0 (--seconds or --frames)")
        if self.policy in ("random", "first") and self.count <= 0:
            raise UsageError(f"the {self.policy} policy needs a window count > 0")

    @classmethod
    def from_cli(cls, values: dict[str, Any], **fixed: Any) -> SegmentConfig:
        """Build from command-line values; an option that the others make pointless is refused
        when it was given a value other than its default (``genre run`` passes every default,
        and a default changes nothing): ``--seconds`` with ``--frames``, ``--frame-hop``
        without ``--frames``."""
        values = dict(values)
        random_k, first = values.pop("random", 0), values.pop("first", 0)
        if random_k and first:
            raise UsageError("--random and --first are exclusive")
        seconds, frame_hop = cls.option("seconds"), cls.option("frame_hop")
        if values.get("frames") and values.get("seconds", seconds.default) != seconds.default:
            raise UsageError(
                f"--frames sets the window length ({values['frames']} STFT frames); drop --seconds {values['seconds']:g}",
                hint="give the window length once: --frames N (at --frame-hop) or --seconds S",
            )
        if not values.get("frames") and values.get("frame_hop", frame_hop.default) != frame_hop.default:
            raise UsageError(
                f"--frame-hop {values['frame_hop']} only applies to --frames windows; drop it, or give --frames N",
                hint="the STFT hop of the features is `genre featurize --hop-length`",
            )
        policy, count = ("random", random_k) if random_k else ("first", first) if first else ("fixed", 0)
        return super().from_cli(values, policy=policy, count=count, **fixed)

    @property
    def win(self) -> int:
        """Window length in samples."""
        if self.frames:
            return (self.frames - 1) * self.frame_hop
        return int(round(self.seconds * self.sr))

    @property
    def hop_samples(self) -> int:
        if self.hop is None:
            return self.win
        return max(1, int(round(self.hop * self.sr)))

    def slug(self) -> str:
        length = f"{self.frames}fr" if self.frames else f"{self.seconds:g}s"
        hop = "" if self.hop is None else f"-hop{self.hop:g}s"
        pol = "" if self.policy == "fixed" else f"-{self.policy}{self.count}"
        return f"seg-{length}{hop}{pol}-{self.sr // 1000}k"

    def grid(self) -> SegmentConfig:
        """The same window length, hop and rate on a fixed grid over the whole track
        (what ``predict`` applies to a file, whatever policy the training windows had)."""
        return SegmentConfig(sr=self.sr, seconds=self.seconds, hop=self.hop, frames=self.frames, frame_hop=self.frame_hop)


def window_starts(n: int, cfg: SegmentConfig, *, track_id: str = "") -> list[tuple[int, int]]:
    """Windows ``(start, length)`` for a track of ``n`` samples under ``cfg``.

    ``length`` < ``cfg.win`` only for a padded last window. Returns ``[]`` when nothing fits.
    """
    win, hop = cfg.win, cfg.hop_samples
    if cfg.policy == "random":
        k = cfg.count
        free = n - k * win
        if free < 0:
            k = n // win  # as many as fit
            free = n - k * win
            if k == 0:
                return [(0, n)] if cfg.last == "pad" and n > 0 else []
        rng = np.random.default_rng([cfg.seed, zlib.crc32(track_id.encode())])
        offsets = np.sort(rng.integers(0, free + 1, size=k))
        return [(int(o) + i * win, win) for i, o in enumerate(offsets)]
    starts = list(range(0, max(n - win, -1) + 1, hop)) if n >= win else []
    out = [(s, win) for s in starts]
    if cfg.last == "pad":
        nxt = starts[-1] + hop if starts else 0
        if nxt < n and (not starts or starts[-1] + win < n):
            out.append((nxt, n - nxt))
    if cfg.policy == "first":
        out = out[: cfg.count]
    return out


def plan_windows(n: int, seg: SegmentConfig) -> list[tuple[int, int]]:
    """Windows ``(start, length)`` covering a whole signal of ``n`` samples.

    Every full window on the hop grid (:func:`window_starts` of :meth:`SegmentConfig.grid`);
    if the last of them ends before the signal does, one more full window ending at the last
    sample; a signal shorter than one window gives ``[(0, n)]`` (zero-padded when
    featurized); ``[]`` when ``n == 0``.
    """
    win = seg.win
    if n <= 0:
        return []
    if n < win:
        return [(0, n)]
    spans = window_starts(n, seg.grid())
    if spans[-1][0] + win < n:
        spans.append((n - win, win))
    return spans


class Windower:
    """Cut a stream of sample blocks into the windows of :func:`plan_windows`.

    Only the samples that a window still open (or the end-aligned last window) may need
    are kept, so memory is bounded by the block size plus one window.
    """

    def __init__(self, seg: SegmentConfig):
        self.win, self.hop = seg.win, seg.hop_samples
        self.seg = seg
        self.buf = np.zeros(0, dtype=np.float32)
        self.buf_start = 0  # sample index of buf[0]
        self.total = 0
        self.k = 0  # next grid window

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add samples; return the ``(start, window)`` pairs now complete."""
        self.buf = np.concatenate([self.buf, block]) if len(self.buf) else block
        self.total += len(block)
        out = []
        while self.k * self.hop + self.win <= self.total:
            s = self.k * self.hop - self.buf_start
            out.append((self.k * self.hop, self.buf[s : s + self.win].copy()))
            self.k += 1
        keep = min(self.k * self.hop, max(self.total - self.win, 0), self.total)
        if keep > self.buf_start:
            self.buf = self.buf[keep - self.buf_start :]
            self.buf_start = keep
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The windows left at the end of the stream (end-aligned or padded)."""
        out = []
        for start, n in plan_windows(self.total, self.seg)[self.k :]:
            w = np.zeros(self.win, dtype=np.float32)
            w[:n] = self.buf[start - self.buf_start : start - self.buf_start + n]
            out.append((start, w))
        return out
