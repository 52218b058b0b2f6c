"""Converted musicnn weight files: write, locate, load.

The file layout (an artifact of kind ``pretrained``) is :mod:`genre_cli.formats.pretrained`.
The package ships ``musicnn-msd.h5`` and ``musicnn-mtt.h5`` in ``genre_cli/data/pretrained/``
with the wheel's ISC licence next to them (``LICENSE-musicnn.txt``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.errors import ArtifactError, CheckpointError
from genre_cli.formats import pretrained as pretrained_format
from genre_cli.pretrained.variants import CITATION, COPYRIGHT, LICENSE_NAME, Variant, variant

#: Where the converted weights ship inside the package.
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "data" / "pretrained"
STAGE = pretrained_format.KIND.stage


def shipped_path(name: str) -> Path:
    """Path of the shipped weight file of ``name`` (``msd``, ``mtt``, ``musicnn-msd``, ...)."""
    return PACKAGE_DIR / variant(name).filename


def is_builtin(name: object) -> bool:
    """True for the names of the shipped taggers (``msd``, ``mtt``, ``musicnn-msd``, ``musicnn-mtt``)."""
    from genre_cli.pretrained.variants import VARIANTS

    names = {k for k in VARIANTS} | {v.name for v in VARIANTS.values()}
    return isinstance(name, str) and name.lower() in names


def _build(config: dict[str, Any], n_classes: int, output: str):
    from genre_cli.models.musicnn import Musicnn

    return Musicnn(n_classes=n_classes, output=output, **config)


def write_weights(path: str | Path, v: Variant, state: dict[str, np.ndarray], *, source: dict[str, str], license_text: str) -> Path:
    """Write a weight file (atomically) for variant ``v`` from a numpy state dict.

    The state dict is loaded into a :class:`~genre_cli.models.musicnn.Musicnn` first
    (strict: every tensor present with the right shape), so a file that does not fit the
    network is never written.

    Raises
    ------
    CheckpointError
        The tensors do not fit the network.
    """
    import torch

    from genre_cli.models import persist
    from genre_cli.pretrained.preprocess import PARAMS, PATCH_FRAMES

    path = Path(path)
    model = _build(v.config, len(v.tags), "sigmoid")
    try:
        model.load_state_dict({k: torch.from_numpy(np.array(a)) for k, a in state.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{source.get('wheel', '?')}:{v.checkpoint}: tensors do not fit musicnn: {str(exc).splitlines()[0][:300]}"
        ) from None
    n_values = int(sum(t.numel() for k, t in model.state_dict().items() if not k.endswith("num_batches_tracked")))
    params = {"model": "musicnn", "variant": v.key, "source_sha256": source.get("sha256"), "preprocessing": PARAMS}
    attrs = {
        "name": v.name,
        "model": "musicnn",
        "variant": v.key,
        "output": "sigmoid",
        "labels": list(v.tags),
        "model_config": v.config,
        "input_shapes": {"spectrogram": [PATCH_FRAMES, v.config["n_mels"]]},
        "preprocessing": PARAMS,
        "dataset": v.dataset,
        "source": source,
        "license": LICENSE_NAME,
        "license_text": license_text,
        "copyright": COPYRIGHT,
        "citation": CITATION,
        "n_values": n_values,
    }
    return pretrained_format.write(path, params=params, attrs=attrs, save_weights=lambda g: persist.save_torch(g, model))


def read_info(path: str | Path) -> dict[str, Any]:
    """The description of a weight file, without the weights (:func:`genre_cli.formats.pretrained.read_info`)."""
    return pretrained_format.read_info(path)


def load_musicnn(name_or_path: str | Path = "msd", *, device: str = "cpu", inference: bool = True):
    """Load a pretrained musicnn tagger.

    Parameters
    ----------
    name_or_path : str or Path
        ``"msd"`` / ``"musicnn-msd"``, ``"mtt"`` / ``"musicnn-mtt"`` (the shipped files) or
        the path of a weight file written by :func:`genre_cli.pretrained.convert.convert`.
    device : str
        torch device.
    inference : bool
        Prepare for inference (eval mode, fast front-end); False leaves a trainable module.

    Returns
    -------
    Musicnn
        With extra attributes ``labels`` (tuple of tag names, output order), ``info``
        (:func:`read_info`) and ``output == "sigmoid"``.

    Raises
    ------
    UsageError
        Unknown built-in name.
    MissingInputError, ArtifactError
        Missing or malformed weight file.
    """
    from genre_cli.models import persist

    path = shipped_path(name_or_path) if is_builtin(name_or_path) else Path(name_or_path)
    if not isinstance(name_or_path, Path) and not path.suffix and not path.exists():
        shipped_path(str(name_or_path))  # neither a built-in name nor a file: UsageError listing the names
    info = read_info(path)
    cfg = info["model_config"]
    try:
        model = _build(cfg, len(info["labels"]), info["output"])
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: model_config {cfg!r} does not build a musicnn ({exc})") from None
    pretrained_format.load_weights(path, lambda g: persist.load_torch(g, model))
    model.labels = tuple(info["labels"])
    model.info = info
    model.to(device)
    if inference:
        from genre_cli.models.base import for_inference

        for_inference(model)
    return model
