"""Pretrained music models: the musicnn taggers (Pons & Serra 2019), offline, in torch.

J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
tagging", ISMIR 2019 late-breaking/demo. The MSD- and MagnaTagATune-trained taggers of the
``musicnn`` 0.1.0 wheel (ISC licence) are converted once from their TensorFlow-1 checkpoints
(read with numpy: :mod:`~genre_cli.pretrained.tfbundle`) into HDF5 files shipped with the
package (``genre_cli/data/pretrained/``), and run by our own torch network
(:class:`genre_cli.models.musicnn.Musicnn`, registered as model ``musicnn``).

Modules
-------
:mod:`~genre_cli.pretrained.variants`
    The taggers (``musicnn-msd``, ``musicnn-mtt``): tags, training data, source wheel. No torch.
:mod:`~genre_cli.pretrained.tfbundle`
    TensorFlow tensor-bundle checkpoint reader (numpy only).
:mod:`~genre_cli.pretrained.convert`
    Wheel -> HDF5 weight files (``python -m genre_cli.pretrained.convert``).
:mod:`~genre_cli.pretrained.weights`
    Weight-file layout, :func:`load_musicnn`, :func:`shipped_path`.
:mod:`~genre_cli.pretrained.preprocess`
    The original pre-processing: 16 kHz log-mel patches (:func:`musicnn_input`, :class:`PatchStream`).
:mod:`~genre_cli.pretrained.embed`
    Embeddings and tag likelihoods of patches, signals and files (:func:`embed_files`).

The names below are importable from this package; importing it loads neither torch nor librosa.
"""

from __future__ import annotations

import importlib

from genre_cli.pretrained.variants import VARIANTS, Variant, variant

_LAZY = {
    "load_musicnn": "weights",
    "shipped_path": "weights",
    "read_info": "weights",
    "is_builtin": "weights",
    "convert": "convert",
    "download_wheel": "convert",
    "musicnn_input": "preprocess",
    "logmel": "preprocess",
    "PatchStream": "preprocess",
    "embed_patches": "embed",
    "embed_signal": "embed",
    "embed_windows": "embed",
    "embed_file": "embed",
    "embed_files": "embed",
    "Embedding": "embed",
    "read_checkpoint": "tfbundle",
    "read_tensors": "tfbundle",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"genre_cli.pretrained.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["VARIANTS", "Variant", "variant", *_LAZY]
