"""Regenerate ``tests/data/musicnn_golden.json``: outputs of the shipped musicnn taggers on a
fixed synthetic signal, for tests/test_pretrained.py.

Trusted run: the plain layers (no fast inference path) in float64 on the float32 input
patches. Run after a deliberate change of weights or pre-processing only::

    python tests/musicnn_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "data" / "musicnn_golden.json"
SECONDS = 7.0  # two full patches (2 x 2.992 s) and a dropped tail


def golden_signal() -> np.ndarray:
    """7 s at 16 kHz: a chord with harmonics, a rising chirp and LCG noise bursts (no RNG library)."""
    sr = 16000
    n = int(SECONDS * sr)
    t = np.arange(n) / sr
    y = sum(0.15 / k * np.sin(2 * np.pi * f * k * t) for f in (220.0, 277.2, 329.6) for k in (1, 2, 3))
    y += 0.1 * np.sin(2 * np.pi * (200 * t + 300 * t**2))
    lcg = ((np.arange(n, dtype=np.int64) * 1103515245 + 12345) % (1 << 31)) / float(1 << 31) - 0.5
    y += 0.4 * lcg * (np.sin(2 * np.pi * 2 * t) > 0.7)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def compute() -> dict:
    import torch

    from genre_cli.pretrained import load_musicnn, musicnn_input

    x = torch.from_numpy(musicnn_input(golden_signal())).double()
    out = {"signal": "tests/musicnn_golden.py:golden_signal", "n_patches": int(x.shape[0])}
    for name in ("msd", "mtt"):
        model = load_musicnn(name, inference=False).double().eval()
        with torch.no_grad():
            t = model.taps(x, ("penultimate", "likelihoods", "max_pool"))
        out[name] = {
            "likelihoods": np.round(t["likelihoods"].numpy(), 7).tolist(),
            "penultimate_mean": np.round(t["penultimate"].mean(0).numpy(), 6).tolist(),
            "max_pool_0_first16": np.round(t["max_pool"][0, :16].numpy(), 5).tolist(),
        }
    return out


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(compute(), indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
