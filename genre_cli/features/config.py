"""`FeatureConfig`: which representations to compute from a batch of segments, and how.

A config is immutable, hashable and JSON-serialisable (:meth:`FeatureConfig.to_params` /
:meth:`FeatureConfig.from_params`) so that the featurize stage can store it next to the
arrays it produced and the predict stage can recompute exactly the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from genre_cli.errors import UsageError

#: Output names in the order :meth:`FeatureConfig.names` lists them.
ALL_NAMES: tuple[str, ...] = ("mel", "stft", "mfcc", "mfcc_frames", "handcrafted", "kaggle")

#: Spectral contrast (``handcrafted``) uses librosa's default 6 octave bands above 200 Hz,
#: whose top band edge (6400 Hz) must lie below Nyquist.
_CONTRAST_MIN_SR = 12_801


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class FeatureConfig:
    """What :func:`genre_cli.features.compute` computes, and with which parameters.

    All spectral outputs share one STFT (Hann window, ``center=True``, zero padding; the
    librosa defaults) of ``n_fft`` samples every ``hop_length`` samples.

    Parameters
    ----------
    sr : int
        Sample rate of the input in Hz (the caller resamples; features only need it for
        the frequency axis). Default 22050.
    n_fft : int
        FFT / frame length in samples (>= 16). Default 2048 (93 ms at 22050 Hz).
    hop_length : int
        Frame hop in samples (>= 1). Default 512 (23 ms at 22050 Hz).
    mel : int
        Number of mel bands of the ``"mel"`` output (Slaney mel scale and area
        normalisation, power 2, like ``librosa.feature.melspectrogram``); 0 = off.
        At most ``n_fft // 2 + 1``.
    fmin, fmax : float, float or None
        Frequency range in Hz of the mel filterbank used by ``"mel"``, ``"mfcc"`` and
        ``"mfcc_frames"``. ``fmax=None`` means ``sr / 2``. The ``handcrafted`` and ``kaggle``
        vectors always use the full band (their published definitions).
    stft : bool
        ``"stft"`` output: log-magnitude STFT, ``n_fft // 2 + 1`` bins, in dB (see ``db``).
    mfcc : int
        Number of MFCCs of the ``"mfcc"`` output (time x coefficient matrix); 0 = off.
        At most ``mfcc_mels``.
    deltas : bool
        Append delta and delta-delta (``librosa.feature.delta``, width 9) to ``"mfcc"``:
        columns are ``[mfcc | delta | delta2]``. Requires ``mfcc > 0``.
    mfcc_frames : tuple of (int, int)
        ``(n_steps, n_mfcc)``; ``(0, 0)`` = off. The fixed-size MFCC sequence of Schrader et al.'s (2021)
        LSTM ("30 segments ... and 30 MFCCs for each segment", i.e. ``(30, 30)`` for a
        30 s clip): the segment is cut into ``n_steps`` equal consecutive blocks and each
        row is the mean of the frame-level MFCCs whose frame centres fall in that block,
        so the shape is ``(n_steps, n_mfcc)`` whatever the segment length.
    handcrafted : bool
        ``"handcrafted"`` output: the 93-value vector of Pun & Nazirkhanova 2020, Table 1 (see
        :func:`genre_cli.features.extract.column_names`). Requires ``sr >= 12801``.
    kaggle : bool
        ``"kaggle"`` output: the 57 values of the Kaggle GTZAN ``features_30_sec.csv``
        table, same column names and order.
    db : bool
        True (default): ``"mel"`` is in dB, ``"stft"`` is ``20 log10 |X|`` in dB, both with
        a *fixed* reference: ``10 log10(max(power, 1e-10))`` (= ``power_to_db(ref=1.0,
        amin=1e-10)``), so identical audio gives identical numbers at train and predict
        time (never ``ref=np.max``). False: ``"mel"`` is mel power and ``"stft"`` is the
        linear magnitude. MFCCs are always computed from the dB mel spectrogram.
    top_db : float or None
        None (default): no floor, the dB values are exactly ``10 log10(max(p, 1e-10))``.
        A positive number reproduces librosa's ``power_to_db(top_db=...)`` floor of
        ``max - top_db`` per segment and output (``librosa.feature.mfcc`` uses 80). Applies
        to ``mel``, ``stft``, ``mfcc``, ``mfcc_frames`` and the MFCCs of ``handcrafted``.
        ``kaggle`` always uses 80, as the table was computed that way.
    mfcc_mels : int
        Number of mel bands the MFCCs of ``mfcc``, ``mfcc_frames`` and ``handcrafted`` are
        computed from (librosa's default 128).

    Notes
    -----
    Validation of values happens at construction (:class:`~genre_cli.errors.UsageError`);
    "no output selected" is checked by :meth:`validate`, which :func:`compute` and
    :func:`output_shape` call, so that ``FeatureConfig()`` itself can be constructed.
    """

    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    mel: int = 0
    fmin: float = 0.0
    fmax: float | None = None
    stft: bool = False
    mfcc: int = 0
    deltas: bool = False
    mfcc_frames: tuple[int, int] = (0, 0)
    handcrafted: bool = False
    kaggle: bool = False
    db: bool = True
    top_db: float | None = None
    mfcc_mels: int = 128

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        def bad(msg: str) -> UsageError:
            return UsageError(f"invalid feature config: {msg}")

        for name in ("sr", "n_fft", "hop_length", "mel", "mfcc", "mfcc_mels"):
            v = getattr(self, name)
            if not _is_int(v):
                raise bad(f"{name} must be an integer, got {v!r}")
        for name in ("stft", "deltas", "handcrafted", "kaggle", "db"):
            v = getattr(self, name)
            if not isinstance(v, bool):
                raise bad(f"{name} must be true or false, got {v!r}")
        if self.sr <= 0:
            raise bad(f"sr must be positive, got {self.sr}")
        if self.n_fft < 16:
            raise bad(f"n_fft must be >= 16, got {self.n_fft}")
        if self.hop_length < 1:
            raise bad(f"hop_length must be >= 1, got {self.hop_length}")
        n_bins = self.n_fft // 2 + 1
        if not 0 <= self.mel <= n_bins:
            raise bad(f"mel must be in [0, n_fft//2+1 = {n_bins}], got {self.mel}")
        if not 1 <= self.mfcc_mels <= n_bins:
            raise bad(f"mfcc_mels must be in [1, n_fft//2+1 = {n_bins}], got {self.mfcc_mels}")
        if not _is_num(self.fmin) or self.fmin < 0:
            raise bad(f"fmin must be a number >= 0, got {self.fmin!r}")
        object.__setattr__(self, "fmin", float(self.fmin))
        nyq = self.sr / 2
        if self.fmax is not None:
            if not _is_num(self.fmax):
                raise bad(f"fmax must be a number or null, got {self.fmax!r}")
            object.__setattr__(self, "fmax", float(self.fmax))
            if not self.fmin < self.fmax <= nyq:
                raise bad(f"need fmin < fmax <= sr/2 = {nyq:g}, got fmin={self.fmin:g}, fmax={self.fmax:g}")
        elif self.fmin >= nyq:
            raise bad(f"fmin must be below sr/2 = {nyq:g}, got {self.fmin:g}")
        if not 0 <= self.mfcc <= self.mfcc_mels:
            raise bad(f"mfcc must be in [0, mfcc_mels = {self.mfcc_mels}], got {self.mfcc}")
        if self.deltas and self.mfcc == 0:
            raise bad("deltas needs mfcc > 0")
        mf = self.mfcc_frames
        if isinstance(mf, list):
            mf = tuple(mf)
            object.__setattr__(self, "mfcc_frames", mf)
        if not (isinstance(mf, tuple) and len(mf) == 2 and all(_is_int(v) for v in mf)):
            raise bad(f"mfcc_frames must be (n_steps, n_mfcc) integers, got {self.mfcc_frames!r}")
        if mf != (0, 0):
            if mf[0] < 1 or mf[1] < 1:
                raise bad(f"mfcc_frames must be (0, 0) or both positive, got {mf}")
            if mf[1] > self.mfcc_mels:
                raise bad(f"mfcc_frames n_mfcc {mf[1]} exceeds mfcc_mels {self.mfcc_mels}")
        if self.handcrafted and self.sr < _CONTRAST_MIN_SR:
            raise bad(f"handcrafted needs sr >= {_CONTRAST_MIN_SR} (spectral contrast bands up to 6400 Hz), got {self.sr}")
        if self.handcrafted and self.mfcc_mels < 13:
            raise bad(f"handcrafted needs mfcc_mels >= 13, got {self.mfcc_mels}")
        if self.kaggle and n_bins < 128:
            raise bad(f"kaggle needs n_fft//2+1 >= 128 (128 mel bands), got n_fft={self.n_fft}")
        if self.top_db is not None:
            if not _is_num(self.top_db) or self.top_db <= 0:
                raise bad(f"top_db must be a positive number or null, got {self.top_db!r}")
            object.__setattr__(self, "top_db", float(self.top_db))

    def validate(self) -> FeatureConfig:
        """Check that at least one output is selected; returns ``self``.

        Raises
        ------
        UsageError
            If no output is selected.
        """
        if not self.names():
            raise UsageError(
                "invalid feature config: no feature selected",
                hint="set at least one of mel, stft, mfcc, mfcc_frames, handcrafted, kaggle",
            )
        return self

    # ------------------------------------------------------------------ helpers
    def names(self) -> list[str]:
        """Names of the outputs this config produces, in :data:`ALL_NAMES` order.

        Examples
        --------
        >>> FeatureConfig(mel=128, handcrafted=True).names()
        ['mel', 'handcrafted']
        """
        on = {
            "mel": self.mel > 0,
            "stft": self.stft,
            "mfcc": self.mfcc > 0,
            "mfcc_frames": self.mfcc_frames != (0, 0),
            "handcrafted": self.handcrafted,
            "kaggle": self.kaggle,
        }
        return [n for n in ALL_NAMES if on[n]]

    def to_params(self) -> dict[str, Any]:
        """JSON-safe dict of every field (tuples become lists); inverse of :meth:`from_params`."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return dict(sorted(out.items()))

    @classmethod
    def from_params(cls, d: dict[str, Any]) -> FeatureConfig:
        """Build a config from :meth:`to_params` output (missing keys take defaults).

        Raises
        ------
        UsageError
            On unknown keys or invalid values.
        """
        if not isinstance(d, dict):
            raise UsageError(f"invalid feature config: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(f"invalid feature config: unknown key(s) {', '.join(unknown)}")
        kw = dict(d)
        if isinstance(kw.get("mfcc_frames"), list):
            kw["mfcc_frames"] = tuple(kw["mfcc_frames"])
        return cls(**kw)
