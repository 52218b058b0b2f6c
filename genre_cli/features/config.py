"""`FeatureConfig`: which features to compute from a batch of segments, and how.

A config is immutable, hashable and JSON-serialisable (:meth:`FeatureConfig.to_params` /
:meth:`FeatureConfig.from_params`) so that the featurize stage can store it next to the
arrays it produced and the predict stage can recompute exactly the same numbers.

Its options are the shared STFT options declared here (:data:`SHARED_OPTIONS`) plus the options
of every registered feature kind (:mod:`genre_cli.features.kind`): adding a kind adds its
options, with their command-line flags, without touching this module.
"""

from __future__ import annotations

from typing import Any

from genre_cli.errors import UsageError
from genre_cli.features import kind as _kinds
from genre_cli.options import Option

#: Options every STFT-based feature shares (the kinds' own options come from the feature table).
SHARED_OPTIONS: tuple[Option, ...] = (
    Option("sr", int, 22050, "Sample rate of the input in Hz (taken from the segments file)."),
    Option("n_fft", int, 2048, "FFT size (samples).", flag="--n-fft", minimum=16),
    Option("hop_length", int, 512, "STFT hop (samples).", flag="--hop-length", minimum=1),
    Option("fmin", float, 0.0, "Lowest mel frequency (Hz).", flag="--fmin", minimum=0),
    Option("fmax", float, None, "Highest mel frequency (Hz) [default: sr/2].", flag="--fmax", nullable=True),
    Option(
        "top_db",
        float,
        None,
        "Floor dB values at max - TOP_DB per segment (librosa's power_to_db; 80 in librosa.feature.mfcc) [default: no floor, -100 dB].",
        flag="--top-db",
        nullable=True,
        above=0,
    ),
    Option(
        "db",
        bool,
        True,
        "No dB: mel power and linear STFT magnitude (MFCCs stay dB-based).",
        flag="--power",
        parse=lambda power: not power,
        cli_default=False,
    ),
    Option(
        "mfcc_mels",
        int,
        128,
        "Mel bands the MFCCs of --mfcc, --mfcc-frames and --handcrafted are computed from (librosa's default).",
        flag="--mfcc-mels",
        minimum=1,
    ),
)


def _all_options() -> tuple[Option, ...]:
    return SHARED_OPTIONS + tuple(o for k in _kinds.kinds() for o in k.options)


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
    fmin, fmax : float, float or None
        Frequency range in Hz of the mel filterbank used by ``"mel"``, ``"mfcc"`` and
        ``"mfcc_frames"``. ``fmax=None`` means ``sr / 2``. The ``handcrafted`` and ``kaggle``
        vectors always use the full band (their published definitions).
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
    mfcc_mels : int >= 1
        Number of mel bands the MFCCs of ``mfcc``, ``mfcc_frames`` and ``handcrafted`` are
        computed from (librosa's default 128); at most ``n_fft//2+1`` when one of them is selected.
    **features
        The options of the feature kinds (``mel=128``, ``stft=True``, ``mfcc=20``,
        ``deltas=True``, ``mfcc_frames=(30, 30)``, ``handcrafted=True``, ``kaggle=True``; see
        :mod:`genre_cli.features.kinds`). Integer sizes are 0 and flags False when off.

    Notes
    -----
    Values are checked at construction (:class:`~genre_cli.errors.UsageError`, also for
    unknown names); "no output selected" is checked by :meth:`validate`, which
    :func:`compute` and :func:`output_shape` call, so that ``FeatureConfig()`` itself can be
    constructed.
    """

    def __init__(self, **values: Any):
        options = _all_options()
        known = {o.name for o in options}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"invalid feature config: unknown key(s) {', '.join(unknown)}")
        try:
            for o in options:
                object.__setattr__(self, o.name, o.check(values.get(o.name, o.default)))
            self._check()
            for k in _kinds.kinds():
                if k.check is not None:
                    k.check(self)
        except UsageError as exc:
            if exc.message.startswith("invalid feature config"):
                raise
            raise UsageError(f"invalid feature config: {exc.message}", hint=exc.hint) from None

    def _check(self) -> None:
        # mfcc_mels against n_fft: checked by the features that compute MFCCs, when selected
        # (features.stft.check_mfcc_mels), so --n-fft 128 --mel 32 is not refused for MFCCs nobody asked for
        if self.sr <= 0:
            raise UsageError(f"sr must be positive, got {self.sr}")
        nyq = self.sr / 2
        if self.fmax is not None:
            if not self.fmin < self.fmax <= nyq:
                raise UsageError(f"need fmin < fmax <= sr/2 = {nyq:g}, got fmin={self.fmin:g}, fmax={self.fmax:g}")
        elif self.fmin >= nyq:
            raise UsageError(f"fmin must be below sr/2 = {nyq:g}, got {self.fmin:g}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FeatureConfig is immutable; use replace()")

    def _items(self) -> tuple:
        return tuple((o.name, getattr(self, o.name)) for o in _all_options())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureConfig) and self._items() == other._items()

    def __hash__(self) -> int:
        return hash(self._items())

    def __repr__(self) -> str:
        set_ = ", ".join(f"{o.name}={getattr(self, o.name)!r}" for o in _all_options() if getattr(self, o.name) != o.default)
        return f"FeatureConfig({set_})"

    # ------------------------------------------------------------------ selection
    def kinds(self) -> list[_kinds.FeatureKind]:
        """The feature kinds this config selects, in table order."""
        return [k for k in _kinds.kinds() if k.compute is not None and k.enabled(self)]

    def names(self) -> list[str]:
        """Names of the outputs this config produces, in table order.

        Examples
        --------
        >>> FeatureConfig(mel=128, handcrafted=True).names()
        ['mel', 'handcrafted']
        """
        return [k.name for k in self.kinds()]

    def validate(self) -> FeatureConfig:
        """Check that at least one output is selected; returns ``self``.

        Raises
        ------
        UsageError
            If no output is selected.
        """
        if not self.names():
            computed = [k.name for k in _kinds.kinds() if k.compute is not None]
            raise UsageError("invalid feature config: no feature selected", hint=f"set at least one of {', '.join(computed)}")
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def to_params(self) -> dict[str, Any]:
        """JSON-safe dict of the options (tuples become lists), sorted; inverse of
        :meth:`from_params`. Options declared ``stored=False`` appear only when set."""
        out: dict[str, Any] = {}
        for o in _all_options():
            v = getattr(self, o.name)
            if not o.stored and v == o.default:
                continue
            out[o.name] = list(v) if isinstance(v, tuple) else v
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
        return cls(**d)

    def replace(self, **changes: Any) -> FeatureConfig:
        """A copy with ``changes`` applied (and checked)."""
        return FeatureConfig(**(dict(self._items()) | changes))

    @classmethod
    def options(cls) -> tuple[Option, ...]:
        """Every option: the shared ones, then each feature kind's."""
        return _all_options()

    @classmethod
    def cli_options(cls) -> tuple[Option, ...]:
        """Options with a command-line flag: the feature kinds' (``--mel`` ...), then the shared ones."""
        kinds_first = tuple(o for k in _kinds.kinds() for o in k.options) + SHARED_OPTIONS
        return tuple(o for o in kinds_first if o.flag)

    @classmethod
    def from_cli(cls, values: dict[str, Any], **fixed: Any) -> FeatureConfig:
        """Build from command-line values keyed by option name (each option's ``parse`` applied)."""
        kw = {o.name: (o.parse(values[o.name]) if o.parse else values[o.name]) for o in cls.cli_options() if o.name in values}
        return cls(**(kw | fixed))
