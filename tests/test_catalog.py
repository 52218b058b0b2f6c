"""The model resolver (built-in names, model files) and model cards."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from genre_cli import catalog
from genre_cli.errors import MissingInputError, UsageError
from genre_cli.features import FeatureConfig, compute
from genre_cli.inference import load_classifier
from genre_cli.registry import Registry


@pytest.fixture
def no_builtins(monkeypatch):
    """An empty built-in registry for the test (the shipped ones, if any, are set aside)."""
    reg = Registry("built-in model")
    monkeypatch.setattr(catalog, "BUILTINS", reg)
    return reg


def test_card_of_a_model_file_says_what_the_file_records(tiny_model):
    card = catalog.card_of_file(tiny_model)
    assert card.name == "model" and card.source == "model.h5" and not card.builtin
    assert card.architecture == "cnn6" and card.paper == "Schrader et al. 2021" and card.output == "softmax"
    assert card.labels == ("high", "low", "noise")
    assert card.dataset == "music" and card.split.startswith("random")  # the folder's name
    assert card.n_train_tracks + card.n_validation_tracks <= 12 and card.n_train_tracks > 0
    assert card.window_seconds == 1.0 and card.hop_seconds == 0.5 and card.sample_rate == 22050
    assert card.input == "mel, 44 x 16" and card.epochs == "best 1 of 1" and card.trained
    levels = {m.level: m for m in card.accuracy}
    assert set(levels) == {"track", "segment"}
    assert all(m.split == "validation" and m.data == "music" and 0 <= m.value <= 1 for m in card.accuracy)
    assert levels["track"].n == card.n_validation_tracks
    assert "not recorded" in card.test_accuracy_note
    d = json.loads(json.dumps(card.to_dict()))
    assert d["labels"] == ["high", "low", "noise"] and d["accuracy"][0]["split"] == "validation"


def test_resolve_a_file_loads_it_with_its_card(tiny_model, no_builtins):
    r = catalog.resolve(str(tiny_model), device="cpu")
    assert r.classifier.model is not None and r.classifier.labels == list(r.card.labels)
    assert catalog.resolve(tiny_model, weights=False).classifier.model is None


def test_resolve_unknown_name_and_missing_file(tmp_path, no_builtins):
    with pytest.raises(UsageError, match=r"unknown model 'genres'.*none are installed"):
        catalog.resolve("genres")
    with pytest.raises(MissingInputError):
        catalog.resolve(str(tmp_path / "nope.h5"))
    assert catalog.default_model() is None


def test_a_builtin_plugs_in_by_name_and_is_the_default(tiny_model, no_builtins):
    """A built-in (here: the tiny model read as a sigmoid tagger and as a genre model) is
    resolved by name before any path, and the genre one is the default."""

    def load(*, device="cpu", weights=True):
        return dataclasses.replace(load_classifier(tiny_model, device=device, weights=weights), output="sigmoid")

    def card(clf):
        return dataclasses.replace(catalog.card_of_file(tiny_model, clf), name="tagger", source="built-in", builtin=True, task="tags")

    catalog.register_builtin(catalog.Builtin("tagger", "tags", "a test tagger", load, card))
    assert catalog.default_model() is None and catalog.default_model("tags") == "tagger"
    g = catalog.Builtin("genres", "genre", "a test genre model", lambda **kw: load_classifier(tiny_model, **kw), catalog.card_of_file)
    catalog.register_builtin(g)
    assert catalog.default_model() == "genres"
    with pytest.raises(ValueError):
        catalog.register_builtin(g)
    r = catalog.resolve("tagger")
    assert r.card.builtin and r.card.output == "sigmoid" and r.classifier.output == "sigmoid"
    with pytest.raises(UsageError, match="built-in models: genres, tagger"):
        catalog.resolve("tagger2")
    # sigmoid outputs: independent likelihoods in [0, 1], rows need not sum to 1
    fcfg = FeatureConfig.from_params(r.classifier.feature_config)
    x = compute(np.random.default_rng(0).standard_normal((3, 22050)).astype(np.float32) * 0.1, fcfg)
    p = r.classifier.predict_proba(x)
    soft = catalog.resolve(tiny_model).classifier.predict_proba(x)
    assert ((p >= 0) & (p <= 1)).all() and not np.allclose(p.sum(1), 1) and np.allclose(soft.sum(1), 1, atol=1e-5)
