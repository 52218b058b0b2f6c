"""The pretrained musicnn taggers: what each one is, where it comes from, its 50 tags.

Pure data (no torch import), so the CLI can list built-in models cheaply.

Tags are copied from ``musicnn/configuration.py`` of the ``musicnn`` 0.1.0 wheel (ISC
licence, (c) Music Technology Group, Universitat Pompeu Fabra 2019), in output-unit order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The wheel the weights are converted from (PyPI ``musicnn==0.1.0``, ``py3-none-any``).
WHEEL_NAME = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_REQUIREMENT = "musicnn==0.1.0"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
WHEEL_LICENSE_MEMBER = "musicnn-0.1.0.dist-info/LICENSE.md"
LICENSE_NAME = "ISC"
COPYRIGHT = "Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019 (code by Jordi Pons)"
CITATION = (
    'J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging", '
    "ISMIR 2019 late-breaking/demo session"
)

MTT_TAGS: tuple[str, ...] = (
    "guitar",
    "classical",
    "slow",
    "techno",
    "strings",
    "drums",
    "electronic",
    "rock",
    "fast",
    "piano",
    "ambient",
    "beat",
    "violin",
    "vocal",
    "synth",
    "female",
    "indian",
    "opera",
    "male",
    "singing",
    "vocals",
    "no vocals",
    "harpsichord",
    "loud",
    "quiet",
    "flute",
    "woman",
    "male vocal",
    "no vocal",
    "pop",
    "soft",
    "sitar",
    "solo",
    "man",
    "classic",
    "choir",
    "voice",
    "new age",
    "dance",
    "male voice",
    "female vocal",
    "beats",
    "harp",
    "cello",
    "no voice",
    "weird",
    "country",
    "metal",
    "female voice",
    "choral",
)

MSD_TAGS: tuple[str, ...] = (
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
)


@dataclass(frozen=True)
class Variant:
    """One pretrained tagger.

    Attributes
    ----------
    name : str
        Built-in model name (``musicnn-msd``).
    key : str
        Short variant key (``msd``).
    checkpoint : str
        Checkpoint prefix inside the wheel (``musicnn/MSD_musicnn/``; files ``.index``,
        ``.data-00000-of-00001``).
    dataset : str
        Training data, in words.
    tags : tuple of str
        Output units, in order.
    config : dict
        :class:`~genre_cli.models.musicnn.Musicnn` keyword arguments.
    filename : str
        File name of the converted weights shipped in ``genre_cli/data/pretrained/``.
    """

    name: str
    key: str
    checkpoint: str
    dataset: str
    tags: tuple[str, ...]
    config: dict = field(
        default_factory=lambda: {"n_mels": 96, "frontend_scale": 1.6, "midend_filters": 64, "backend_units": 200, "dropout": 0.5}
    )
    filename: str = ""


VARIANTS: dict[str, Variant] = {
    "msd": Variant(
        name="musicnn-msd",
        key="msd",
        checkpoint="musicnn/MSD_musicnn/",
        dataset="Million Song Dataset: 50 most frequent Last.fm tags (genres, moods, eras, instruments)",
        tags=MSD_TAGS,
        filename="musicnn-msd.h5",
    ),
    "mtt": Variant(
        name="musicnn-mtt",
        key="mtt",
        checkpoint="musicnn/MTT_musicnn/",
        dataset="MagnaTagATune: 50 most frequent tags (instruments, genres, moods, vocals)",
        tags=MTT_TAGS,
        filename="musicnn-mtt.h5",
    ),
}


def variant(name: str) -> Variant:
    """The variant called ``name`` (``msd``, ``mtt``, ``musicnn-msd`` or ``musicnn-mtt``).

    Raises
    ------
    UsageError
        Unknown name (the message lists the valid ones).
    """
    from genre_cli.errors import UsageError

    key = name.lower().removeprefix("musicnn-").removeprefix("musicnn_")
    if key not in VARIANTS:
        valid = ", ".join(sorted({v.name for v in VARIANTS.values()} | set(VARIANTS)))
        raise UsageError(f"unknown pretrained musicnn {name!r}; valid: {valid}")
    return VARIANTS[key]
