"""Training-time augmentation of normalised feature batches (training batches only).

Every function takes a batch where it lives (CPU or GPU) and draws its randomness on the CPU
from a ``torch.Generator``, so a seed gives the same augmentation on any device. Inputs are
normalised per feature column (mean 0, std 1 over the training split), so 0 is "average".

Spectrogram slots ``(batch, frames, bins)``:

:func:`time_shift`
    Circular shift along time by up to a fraction of the window: a groove does not start at the
    window's edge, and the network should not learn where it does.
:func:`freq_shift`
    Shift along the frequency axis by up to a few bins (edge bins repeated): a drum tuned
    higher or lower, another kit.
:func:`random_eq`
    Add a smooth random curve over the frequency bins (a constant and a few low-order cosines):
    another kit, microphone or mix colours the spectrum; the style does not change.
:func:`spec_augment`
    SpecAugment's time and frequency masks (Park et al. 2019), zeros = the training mean.

Any slot: :func:`mixup` (Zhang et al. 2018) mixes pairs of samples and their losses.

Which augmentations apply depends on the feature in the slot (:data:`SPECTRAL`): frequency
shifts, EQ curves and frequency masks only make sense on a frequency axis (``mel``, ``stft``),
not on cepstral coefficients (``mfcc``, ``mfcc_frames``) nor on vectors of statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Features whose last axis is a frequency axis (the spectral augmentations apply).
SPECTRAL = ("mel", "stft")
#: Features whose first per-sample axis is time.
TEMPORAL = ("mel", "stft", "mfcc", "mfcc_frames")
SPEC_MASKS, SPEC_MAX_FRACTION = 2, 0.15  # SpecAugment: 2 time + 2 frequency masks, each <= 15 %
EQ_TERMS = 3  # cosines in a random EQ curve


@dataclass(frozen=True)
class Augment:
    """What to apply to a training batch (0 / False = off).

    Attributes
    ----------
    specaugment : bool
        Time masks on temporal slots, frequency masks on spectral ones.
    time_shift : float in [0, 1]
        Largest circular shift along time, as a fraction of the window.
    freq_shift : int >= 0
        Largest shift along frequency, in bins.
    eq : float >= 0
        Standard deviation of each random EQ term, in normalised units.
    """

    specaugment: bool = False
    time_shift: float = 0.0
    freq_shift: int = 0
    eq: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.specaugment or self.time_shift or self.freq_shift or self.eq)


def apply(xb: dict, features: dict[str, str], aug: Augment, gen) -> dict:
    """Augment a batch ``{slot: tensor}``; ``features`` maps each slot to its feature name."""
    if not aug.active:
        return xb
    out = dict(xb)
    for slot, x in xb.items():
        name = features.get(slot, "")
        if name not in TEMPORAL or x.dim() != 3:
            continue
        spectral = name in SPECTRAL
        if aug.time_shift:
            x = time_shift(x, gen, max_fraction=aug.time_shift)
        if spectral and aug.freq_shift:
            x = freq_shift(x, gen, max_bins=aug.freq_shift)
        if spectral and aug.eq:
            x = random_eq(x, gen, scale=aug.eq)
        if aug.specaugment:
            x = spec_augment(x, gen, freq=spectral)
        out[slot] = x
    return out


def time_shift(x, gen, *, max_fraction: float):
    """Roll each sample of ``(batch, frames, bins)`` by its own random number of frames."""
    import torch

    b, t, f = x.shape
    m = int(round(t * max_fraction))
    if m < 1:
        return x
    shift = torch.randint(-m, m + 1, (b,), generator=gen)
    idx = (torch.arange(t)[None, :] - shift[:, None]) % t
    return x.gather(1, idx.to(x.device)[:, :, None].expand(b, t, f))


def freq_shift(x, gen, *, max_bins: int):
    """Shift each sample along its last axis by up to ``max_bins`` bins, repeating the edge bin."""
    import torch

    b, t, f = x.shape
    shift = torch.randint(-max_bins, max_bins + 1, (b,), generator=gen)
    idx = (torch.arange(f)[None, :] - shift[:, None]).clamp(0, f - 1)
    return x.gather(2, idx.to(x.device)[:, None, :].expand(b, t, f))


def random_eq(x, gen, *, scale: float, terms: int = EQ_TERMS):
    """Add ``c0 + sum_k c_k cos(pi k u)`` (``u`` in [0, 1] over the bins), ``c ~ N(0, scale^2)``."""
    import torch

    b, _, f = x.shape
    u = torch.linspace(0.0, 1.0, f)
    basis = torch.stack([torch.cos(math.pi * k * u) for k in range(terms + 1)])  # (terms+1, f)
    coef = torch.randn(b, terms + 1, generator=gen) * scale
    curve = (coef @ basis).to(x.device, x.dtype)
    return x + curve[:, None, :]


def spec_augment(x, gen, *, n_masks: int = SPEC_MASKS, max_fraction: float = SPEC_MAX_FRACTION, freq: bool = True):
    """Zero ``n_masks`` random time spans (and frequency bands when ``freq``) per sample of
    ``(batch, frames, bins)``. Masks are drawn on the CPU from ``gen`` and applied where ``x`` lives."""
    import torch

    b, t, f = x.shape
    keep = torch.ones(b, t, f, dtype=torch.bool)
    for axis, size in ((1, t), (2, f)) if freq else ((1, t),):
        wmax = max(1, int(size * max_fraction))
        for _ in range(n_masks):
            w = torch.randint(0, wmax + 1, (b,), generator=gen)
            start = (torch.rand(b, generator=gen) * (size - w + 1)).long()
            ar = torch.arange(size)
            band = (ar[None, :] >= start[:, None]) & (ar[None, :] < (start + w)[:, None])
            keep &= ~(band[:, :, None] if axis == 1 else band[:, None, :])
    return x * keep.to(x.device, non_blocking=True)


def mixup(xb: dict, yb, alpha: float, gen, np_rng):
    """Mix a batch with a random permutation of itself: ``(mixed batch, lam, partner index)``.

    ``lam ~ Beta(alpha, alpha)`` from ``np_rng``; the loss is ``lam * L(y) + (1 - lam) * L(y[partner])``.
    """
    import torch

    lam = float(np_rng.beta(alpha, alpha))
    partner = torch.randperm(len(yb), generator=gen).to(yb.device)
    return {s: lam * v + (1 - lam) * v[partner] for s, v in xb.items()}, lam, partner


__all__ = ["Augment", "SPECTRAL", "TEMPORAL", "apply", "freq_shift", "mixup", "random_eq", "spec_augment", "time_shift"]
