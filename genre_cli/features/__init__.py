"""Feature extraction library: pure functions from audio segments to arrays.

No file I/O and no CLI here; the featurize stage calls :func:`compute` on batches of
segments and stores the result with :meth:`FeatureConfig.to_params`.

>>> import numpy as np
>>> from genre_cli.features import FeatureConfig, compute
>>> cfg = FeatureConfig(mel=128, handcrafted=True)
>>> out = compute(np.zeros((2, 66150), np.float32), cfg)
>>> {k: v.shape for k, v in out.items()}
{'mel': (2, 130, 128), 'handcrafted': (2, 93)}
"""

from genre_cli.features.config import ALL_NAMES, FeatureConfig
from genre_cli.features.extract import column_names, compute, n_frames, output_shape

__all__ = ["ALL_NAMES", "FeatureConfig", "column_names", "compute", "n_frames", "output_shape"]
