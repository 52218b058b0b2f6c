"""Built-in models (``genres``, ``musicnn-msd``, ``musicnn-mtt``): resolved by name in one place,
usable offline by predict / evaluate / info, taggers reported as likelihoods, the shipped genre
model's recorded provenance, and what it says about real rock songs."""

from __future__ import annotations

import csv
import io
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genre_cli import audio, catalog, evaluate, shipped
from genre_cli import predict as pred
from genre_cli.errors import ArtifactError, UsageError
from genre_cli.formats import model as model_format
from genre_cli.inference import load_classifier
from genre_cli.pretrained.variants import MSD_TAGS

from conftest import SHARED_DATA, genre, synth

GTZAN_GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
ROCK = SHARED_DATA / "music-folder" / "rock"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Built-ins must work with no network at all: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a built-in model tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def clips(tmp_path, rng) -> Path:
    root = tmp_path / "clips"
    root.mkdir()
    sf.write(root / "a.wav", synth("noise", 7.0, 22050, rng), 22050)
    sf.write(root / "b.flac", synth("low", 4.0, 44100, rng), 44100)
    (root / "broken.mp3").write_bytes(np.random.default_rng(1).bytes(3000))
    (root / "notes.txt").write_text("not audio")
    return root


def test_names_resolve_in_one_place(tmp_path, monkeypatch):
    assert catalog.BUILTINS.names() == ["genres", "musicnn-msd", "musicnn-mtt"] and catalog.default_model() == "genres"
    assert catalog.default_model("tags") == "musicnn-msd"
    for name in catalog.BUILTINS.names():
        path = catalog.resolve_path(name)
        assert path == catalog.BUILTINS.get(name).path and path.is_file()
        assert catalog.resolve(name, weights=False).card.builtin
    monkeypatch.chdir(tmp_path)
    (tmp_path / "genres").write_bytes(b"x")
    assert catalog.resolve_path("genres") == shipped.GENRES_PATH  # a name wins over a file of that name ...
    assert catalog.resolve_path("./genres") == Path("genres") and catalog.resolve_path(Path("genres")) == Path(
        "genres"
    )  # ... unless a path
    with pytest.raises(UsageError, match="built-in models: genres, musicnn-msd, musicnn-mtt"):
        load_classifier("gneres")


def test_loaded_builtins_know_their_output_kind():
    tagger = load_classifier("musicnn-msd", weights=False)
    assert (tagger.kind, tagger.output, tagger.labels) == ("tagger", "sigmoid", list(MSD_TAGS))
    assert tagger.model is None and load_classifier("musicnn-msd").model is not None
    clf = load_classifier("genres")
    assert (clf.kind, clf.output, clf.labels, clf.inputs) == ("sklearn", "softmax", GTZAN_GENRES, {"vector": "musicnn_embedding"})
    assert clf.feature_config["embedding"] == "musicnn-msd" and clf.segment_config["sr"] == 16000


def test_predict_with_a_tagger_reports_likelihoods(clips):
    a, b = sorted(p for p in clips.iterdir() if p.suffix in (".wav", ".flac"))
    res = list(pred.run("musicnn-mtt", [a, b, clips / "broken.mp3"], jobs=2, timeline=True))
    assert [type(r).__name__ for r in res] == ["Prediction", "Prediction", "Failure"]
    p = res[0]
    assert p.output == "sigmoid" and p.words == ("tag", "likelihood") and len(p.labels) == 50
    assert p.n_windows == 3 and [round(w[0], 2) for w in p.windows] == [0.0, 3.0, 4.0]  # 3-s windows, last one end-aligned
    assert np.all((p.proba >= 0) & (p.proba <= 1)) and abs(p.proba.sum() - 1) > 0.05  # independent likelihoods
    np.testing.assert_allclose(p.proba, np.mean([w[2] for w in p.windows], axis=0), atol=1e-6)


def test_predict_command_with_builtins(clips, tmp_path):
    out = genre("predict", "musicnn-msd", clips, "--top-k", "5", "--format", "csv")
    assert out.exit_code == 1  # broken.mp3 failed, the others worked
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["path", "tag", "likelihood"] + [f"{w}_{i}" for i in range(2, 6) for w in ("tag", "likelihood")]
    assert len(rows) == 3 and all(r[1] in MSD_TAGS for r in rows[1:])
    assert "2 classified, 1 failed, 1 non-audio files ignored" in out.stderr and "broken.mp3" in out.stderr
    js = genre("predict", "musicnn-msd", "-", "--format", "jsonl", "--timeline", input=f"{clips / 'a.wav'}\n")
    assert js.exit_code == 0
    rec = json.loads(js.stdout)  # one schema for every model (genre serve reads it too), and the output kind said
    assert rec["output"] == "sigmoid" and list(rec)[-2:] == ["output", "windows"]
    assert rec["genre"] in MSD_TAGS and len(rec["probabilities"]) == 50 and abs(sum(rec["probabilities"].values()) - 1) > 0.05
    tsv = genre("predict", "genres", clips / "a.wav", clips / "b.flac", "--top-k", "2")
    assert tsv.exit_code == 0
    lines = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert len(lines) == 2 and all(r[1] in GTZAN_GENRES and r[3] in GTZAN_GENRES for r in lines)
    g = json.loads(genre("predict", "genres", clips / "a.wav", "--format", "jsonl").stdout)
    assert "output" not in g and abs(sum(g["probabilities"].values()) - 1) < 1e-4  # a classifier's record as before
    assert genre("predict", "gneres", clips).exit_code == 2


def test_shipped_genre_model_records_its_provenance():
    card = model_format.read_card(shipped.GENRES_PATH)
    assert "gtzan-mini" in card["training_data"] and "all 50 clips" in card["training_data"]
    assert "same-artist" in card["caveat"] and "5-fold" in card["accuracy"] and "tools/genres_model.py" in card["command"]
    cv = card["measured"]["cv_seed0"]
    assert cv["n_tracks"] == 50 and 0.5 <= cv["accuracy"] <= 1 and len(cv["fold_accuracy"]) == 5
    assert f"{cv['accuracy']:.2f}" in card["accuracy"]
    seen = model_format.seen(shipped.GENRES_PATH)
    assert len(seen["train"]) == 50 and not seen["validation"]  # trained on all of gtzan-mini
    # the catalog's card (genre models, genre serve's page) says the same
    mc = catalog.resolve("genres", weights=False).card
    assert mc.builtin and mc.task == "genre" and mc.output == "softmax" and mc.labels == tuple(GTZAN_GENRES)
    assert mc.accuracy[0].value == round(cv["accuracy"], 4) and mc.accuracy[0].data == "gtzan-mini" and "same-artist" in mc.accuracy[0].note
    tags = catalog.resolve("musicnn-mtt", weights=False).card
    assert tags.task == "tags" and tags.output == "sigmoid" and tags.licence.startswith("ISC") and "MagnaTagATune" in tags.dataset
    info = genre("info", "genres")
    assert info.exit_code == 0 and "training data: gtzan-mini" in info.stdout and "accuracy: " in info.stdout
    models = genre("models")
    assert models.exit_code == 0 and all(n in models.stdout for n in ("genres", "musicnn-msd", "musicnn-mtt", "Million Song Dataset"))
    cards = json.loads(genre("models", "--json").stdout)
    assert [c["output"] for c in cards] == ["softmax", "sigmoid", "sigmoid"] and cards[0]["labels"] == GTZAN_GENRES


def test_evaluate_takes_the_genre_model_by_name_and_refuses_taggers():
    assert evaluate._model_file("genres") == shipped.GENRES_PATH
    with pytest.raises(UsageError, match="is a tagger"):
        evaluate._model_file("musicnn-msd")


def test_a_weight_file_from_another_source_is_not_passed_off_as_the_tagger(tmp_path):
    from test_pretrained import _fake_wheel

    from genre_cli.pretrained import convert as conv

    wheel = tmp_path / "musicnn-0.1.0-py3-none-any.whl"
    _fake_wheel(wheel)
    (path,) = conv.convert(wheel, tmp_path / "w", variants=("mtt",), sha256=None).values()
    with pytest.raises(ArtifactError, match="another source"):
        load_classifier(path)
    assert load_classifier(catalog.resolve_path("musicnn-mtt")).output == "sigmoid"
    assert catalog.card_of_file(path).task == "tags"  # a rebuilt weight file has a tagger's card


@pytest.mark.skipif(not ROCK.is_dir(), reason="shared music-folder data absent (it lives beside the checkout)")
def test_rock_songs_are_rock_or_metal(tmp_path):
    """The 8 real rock/metal songs of the music folder, first 60 s of each (the full songs: 7 of 8
    metal, see docs/results.md): most must come out rock or metal."""
    songs = sorted(ROCK.glob("*.ogg"))
    assert len(songs) == 8
    clips = []
    for p in songs:
        y, sr = audio.load(p, sr=16000, duration=60.0)
        clips.append(tmp_path / f"{p.stem}.wav")
        sf.write(clips[-1], y, sr)
    top = {r.path.stem: r.top(1)[0][0] for r in pred.run("genres", clips, jobs=2)}
    hits = sorted(k for k, g in top.items() if g in ("rock", "metal"))
    assert len(hits) >= 6, top  # measured: 7 of 8 (feelings.ogg's quiet first minute: classical)
