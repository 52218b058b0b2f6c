"""The models shipped with the package, registered as built-ins of :mod:`genre_cli.catalog`.

=================  ======  ==============================================================
name               task    what it is
=================  ======  ==============================================================
``genres``         genre   one of the 10 GTZAN genres per file: logistic regression on
                           musicnn-msd embeddings of 3-s windows, trained on 50 real GTZAN
                           clips (``tools/genres_model.py``); the default of ``genre serve``
``musicnn-msd``    tags    musicnn (Pons & Serra 2019) trained on the Million Song Dataset:
                           50 Last.fm tag likelihoods
``musicnn-mtt``    tags    musicnn trained on MagnaTagATune: 50 tag likelihoods
=================  ======  ==============================================================

Names are resolved in one place, :mod:`genre_cli.catalog` (``catalog.resolve`` for a loaded
model and its card, ``catalog.resolve_path`` for the file), which
:func:`genre_cli.inference.load_classifier` (``predict``), ``evaluate``, ``info`` and
``genre serve`` all use. A tagger loads as a classifier of kind ``tagger`` whose ``output`` is
``"sigmoid"``: independent tag likelihoods in [0, 1], not a distribution over classes.

Importing this module is cheap (no torch, no h5py): :mod:`genre_cli.catalog` imports it to
register the models.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from genre_cli import catalog
from genre_cli.pretrained.variants import CITATION, VARIANTS, Variant

#: Where the shipped model files live inside the package.
DATA_DIR = Path(__file__).resolve().parent / "data"
GENRES_PATH = DATA_DIR / "models" / "genres.h5"
#: The first 3-s window's tags are musicnn's own patch: a window per patch, no overlap.
TAGGER_WINDOW_SECONDS = 3.0
TAGGER_RATE = 16000


def _load(path: Path):
    def load(*, device: str = "cpu", weights: bool = True):
        from genre_cli.inference import load_classifier

        return load_classifier(path, device=device, weights=weights)

    return load


def genres_card(clf=None) -> catalog.ModelCard:
    """The ``genres`` model's card: what its file records, plus its model card (training data,
    cross-validated accuracy with the same-artist caveat, how it was built)."""
    from genre_cli.formats import model as model_format

    base = catalog.card_of_file(GENRES_PATH, clf)
    card = model_format.read_card(GENRES_PATH)
    measured = card.get("measured", {})
    cv = measured.get("cv_seed0") or {}
    accuracy = []
    if cv:
        accuracy.append(
            catalog.Measure(
                round(float(cv["accuracy"]), 4),
                "accuracy",
                f"stratified 5-fold cross-validation over its {cv.get('n_tracks', 50)} training clips (seed 0)",
                "track",
                "gtzan-mini",
                cv.get("n_tracks"),
                "same-artist caveat: clips of one genre often share an artist and the folds put one artist on both sides: optimistic",
            )
        )
    art = measured.get("artist_filtered_test") or {}
    if art:
        accuracy.append(
            catalog.Measure(
                round(float(art["accuracy"]), 4),
                "accuracy",
                f"GTZAN's artist-filtered test clips within gtzan-mini (fitted on its {art.get('n_train_tracks')} train+valid clips)",
                "track",
                "gtzan-mini",
                art.get("n_tracks"),
                "4 clips: too few to be an accuracy figure",
            )
        )
    return dataclasses.replace(
        base,
        name="genres",
        source="built-in",
        builtin=True,
        description=GENRES.description,
        paper="logistic regression: Pun & Nazirkhanova 2020; embedding: Pons & Serra 2019",
        dataset=card.get("training_data", base.dataset),
        split=card.get("split", base.split),
        accuracy=tuple(accuracy) or base.accuracy,
        test_accuracy_note="no held-out test set: all 50 clips trained the shipped model; the accuracy is cross-validated",
        extra={k: card[k] for k in ("features", "caveat", "artist_filtered", "command", "built") if card.get(k)},
    )


def tagger_card(path: str | Path, clf=None, *, builtin: bool = False) -> catalog.ModelCard:
    """The card of a musicnn weight file (a built-in tagger, or one rebuilt by
    ``genre fetch model musicnn``): training data, licence and citation from the file."""
    from genre_cli.formats import pretrained

    path = Path(path)
    info = pretrained.read_info(path)
    return catalog.ModelCard(
        name=info["name"] if builtin else path.stem,
        source="built-in" if builtin else path.name,
        architecture="musicnn",
        labels=tuple(info["labels"]),
        builtin=builtin,
        task="tags",
        output="sigmoid",
        paper="Pons & Serra 2019",
        description=f"pretrained musicnn tagger: 50 independent tag likelihoods ({info['dataset']})",
        dataset=info["dataset"],
        accuracy=(),
        test_accuracy_note="not measured here; the port reproduces the authors' published tag likelihoods (docs/musicnn.md)",
        input="log-mel, 187 x 96 (3-s patches at 16 kHz)",
        window_seconds=TAGGER_WINDOW_SECONDS,
        hop_seconds=TAGGER_WINDOW_SECONDS,
        sample_rate=TAGGER_RATE,
        licence=f"{info['license']} ({info['copyright']})",
        extra={"citation": info["citation"], "source": info["source"]},
    )


GENRES = catalog.register_builtin(
    catalog.Builtin(
        "genres",
        "genre",
        "10 GTZAN genres: logistic regression on musicnn-msd embeddings of 3-s windows, trained on 50 real GTZAN clips",
        _load(GENRES_PATH),
        genres_card,
        default=True,
        path=GENRES_PATH,
    )
)


def _tagger(v: Variant) -> catalog.Builtin:
    path = DATA_DIR / "pretrained" / v.filename
    return catalog.register_builtin(
        catalog.Builtin(
            v.name,
            "tags",
            f"musicnn (Pons & Serra 2019) tagger: {v.dataset}",
            _load(path),
            lambda clf, path=path: tagger_card(path, clf, builtin=True),
            path=path,
        )
    )


TAGGERS = {v.name: _tagger(v) for v in VARIANTS.values()}

__all__ = ["CITATION", "GENRES", "GENRES_PATH", "TAGGERS", "genres_card", "tagger_card"]
