"""Feature extraction library: pure functions from audio segments to arrays.

No file I/O and no CLI here; the featurize stage calls :func:`compute` on batches of
segments and stores the result with :meth:`FeatureConfig.to_params`.

* :mod:`~genre_cli.features.kind` -- the feature table (:data:`FEATURES`): one registered
  kind per feature, with its options, slot, shape, columns and computation;
  :mod:`~genre_cli.features.kinds` -- the kinds themselves (one module per family);
* :mod:`~genre_cli.features.filters` -- cached filter banks (window, mel, DCT, chroma, deltas);
* :mod:`~genre_cli.features.spectral` -- batched primitives equal to librosa's functions;
* :mod:`~genre_cli.features.stft` -- the shared-STFT frontend.

>>> import numpy as np
>>> from genre_cli.features import FeatureConfig, compute
>>> cfg = FeatureConfig(mel=128, handcrafted=True)
>>> out = compute(np.zeros((2, 66150), np.float32), cfg)
>>> {k: v.shape for k, v in out.items()}
{'mel': (2, 130, 128), 'handcrafted': (2, 93)}
"""

from genre_cli.features.config import FeatureConfig
from genre_cli.features.extract import column_names, compute, n_frames, output_shape
from genre_cli.features.kind import FEATURES, SLOTS, FeatureKind, make_hint, slot_choices

__all__ = [
    "FEATURES",
    "SLOTS",
    "FeatureConfig",
    "FeatureKind",
    "column_names",
    "compute",
    "make_hint",
    "n_frames",
    "output_shape",
    "slot_choices",
]
