"""Each feature kind's ``depends_on`` (what ``evaluate`` compares between a model and features) is
checked by computing the feature with every shared option changed: the values change exactly
for the options it declares."""

from __future__ import annotations

import numpy as np
import pytest

from genre_cli.features import FeatureConfig, compute
from genre_cli.features import kind as kinds
from genre_cli.features.config import SHARED_OPTIONS

SR = 22050
#: Another valid value of each shared option (a new option must be added here: the test says so).
OTHER = {"n_fft": 1024, "hop_length": 256, "fmin": 300.0, "fmax": 5000.0, "top_db": 30.0, "db": False, "mfcc_mels": 64}
#: A config selecting each computed kind (small sizes: fast).
SELECT = {
    "mel": {"mel": 16},
    "stft": {"stft": True},
    "mfcc": {"mfcc": 13},
    "mfcc_frames": {"mfcc_frames": (4, 13)},
    "handcrafted": {"handcrafted": True},
    "kaggle": {"kaggle": True},
    "musicnn_embedding": {"embedding": "musicnn-msd"},
    "musicnn_tags": {"embedding": "musicnn-msd"},
}


def _audio() -> np.ndarray:
    """Two 3.1-s segments: a tone with harmonics, then silence (so a top_db floor bites), and noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(3.1 * SR)) / SR
    tone = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 8)) * (t < 2.0)
    return np.stack([tone, 0.2 * rng.standard_normal(len(t))]).astype(np.float32)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(SELECT))
def test_depends_on_lists_exactly_the_options_that_change_the_values(name):
    kind = kinds.get(name)
    declared = set(kinds.value_options(name))
    assert "sr" in declared  # segments are resampled to sr: every computed feature sees other samples
    assert {o.name for o in kind.options} <= declared
    y = _audio()
    base = FeatureConfig(**SELECT[name])
    ref = compute(y, base)[name]
    for o in SHARED_OPTIONS:
        if o.name == "sr":
            continue
        assert o.name in OTHER, f"give the new option {o.name!r} another value in OTHER"
        changed = not _same(ref, compute(y, base.replace(**{o.name: OTHER[o.name]}))[name])
        assert changed == (o.name in declared), f"{name}: {o.name} {'changes' if changed else 'does not change'} its values"


def test_every_feature_kind_is_checked():
    computed = {k.name for k in kinds.kinds() if k.compute is not None}
    assert computed == set(SELECT)
    assert kinds.value_options("table") == ()  # imported: nothing to compare
