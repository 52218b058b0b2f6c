"""``musicnn_embedding`` and ``musicnn_tags``: what a pretrained musicnn hears in each window.

J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
tagging", ISMIR 2019 late-breaking/demo. ``--embedding musicnn-msd``: the tagger trained on the
Million Song Dataset (50 Last.fm tags: genres, moods, eras, instruments); ``--embedding
musicnn-mtt``: the one trained on MagnaTagATune (50 tags: instruments, genres, moods, vocals).
Both ship with the package (:mod:`genre_cli.pretrained`); nothing is downloaded.

Per window: each window (at the segments' rate) is resampled to 16 kHz (soxr HQ), cut into
musicnn's 3-s patches (187 frames of 16 ms, non-overlapping, from the window's start; a partial
last patch is dropped: a 10-s window is 3 patches), and the network runs once per chunk of
windows. ``musicnn_embedding`` is the 200-d penultimate layer and ``musicnn_tags`` the 50 tag
likelihoods (independent sigmoids in [0, 1]), each the mean over the window's patches.

Windows shorter than one patch (2.976 s) are refused: segment with ``--seconds 3`` or longer.
(The authors' training repeated the frames of short clips; windows are a choice made at
``genre segment``, so a too-short one is a mistake to report, not to paper over.)
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from genre_cli.errors import UsageError
from genre_cli.features.kind import FeatureKind, Frontend, register, register_frontend
from genre_cli.options import Option
from genre_cli.pretrained.variants import VARIANTS, variant

CHOICES = tuple(v.name for v in VARIANTS.values())  # musicnn-msd, musicnn-mtt
RATE = 16000  #: the network's sample rate (Hz)
MIN_SAMPLES = 186 * 256  #: one 187-frame patch at 16 kHz (centred frames, hop 256): 2.976 s
DIM = 200  #: penultimate-layer width

_models: dict[str, object] = {}
_lock = threading.Lock()
_threads = {"users": 0, "before": 0}


def _model(name: str):
    """The tagger ``name``, loaded once per process (featurize's workers each load their own)."""
    with _lock:
        if name not in _models:
            from genre_cli.pretrained import load_musicnn

            _models[name] = load_musicnn(name)
        return _models[name]


@contextlib.contextmanager
def _torch_threads(n: int):
    """torch's intra-op pool at ``n`` threads while any chunk runs (callers are featurize's
    one-thread workers or predict's decoding threads: one thread each is fastest on CPU)."""
    import torch

    with _lock:
        if _threads["users"] == 0:
            _threads["before"] = torch.get_num_threads()
            torch.set_num_threads(max(1, n))
        _threads["users"] += 1
    try:
        yield
    finally:
        with _lock:
            _threads["users"] -= 1
            if _threads["users"] == 0:
                torch.set_num_threads(_threads["before"])


class MusicnnChunk:
    """One chunk of windows through the network: ``embedding`` (n, 200), ``tags`` (n, 50)."""

    def __init__(self, y: np.ndarray, cfg, kinds, workers: int = 1):
        from genre_cli.pretrained.embed import embed_windows

        with _torch_threads(workers):
            self.embedding, self.tags = embed_windows(_model(cfg.embedding), y, cfg.sr, short="error")


def _check_length(cfg, n_samples: int) -> int:
    if n_samples * RATE // cfg.sr < MIN_SAMPLES:
        raise UsageError(
            f"--embedding {cfg.embedding} needs windows of at least {MIN_SAMPLES / RATE:.3f} s (one 3-s musicnn patch); "
            f"these are {n_samples / cfg.sr:.3f} s",
            hint="segment with --seconds 3 or longer",
        )
    return 0


register_frontend(Frontend("musicnn", make=MusicnnChunk, check_length=_check_length))

OPTION = Option(
    "embedding",
    str,
    None,
    "Pretrained musicnn (Pons & Serra 2019) per window: its 200-d embedding and 50 tag likelihoods; "
    "musicnn-msd: trained on the Million Song Dataset, musicnn-mtt: on MagnaTagATune. Windows >= 3 s.",
    flag="--embedding",
    choices=CHOICES,
    stored=False,
    metavar="MODEL",
)


def _put(name: str):
    return lambda chunk, cfg, out: out.__setitem__(slice(None), getattr(chunk, name))


EMBEDDING = register(
    FeatureKind(
        "musicnn_embedding",
        slot="vector",
        order=62,
        options=(OPTION,),
        enabled=lambda cfg: cfg.embedding is not None,
        shape=lambda cfg, n: (DIM,),
        compute=_put("embedding"),
        frontend="musicnn",
        columns=lambda cfg: [f"emb{i}" for i in range(DIM)],
        suggested={"embedding": "musicnn-msd"},
        depends_on=("sr", "embedding"),  # its own mel frontend at 16 kHz
        slug=lambda cfg: cfg.embedding,
        description="the 200-d penultimate-layer embedding of a pretrained musicnn (Pons & Serra 2019), mean over 3-s patches",
    )
)

TAGS = register(
    FeatureKind(
        "musicnn_tags",
        slot="vector",
        order=63,
        enabled=lambda cfg: cfg.embedding is not None,
        shape=lambda cfg, n: (len(variant(cfg.embedding).tags),),
        compute=_put("tags"),
        frontend="musicnn",
        columns=lambda cfg: list(variant(cfg.embedding).tags),
        hint="--embedding musicnn-msd",
        depends_on=("sr", "embedding"),
        slug=lambda cfg: "tags",
        description="the 50 tag likelihoods of a pretrained musicnn (MSD or MagnaTagATune tags), mean over 3-s patches",
    )
)
