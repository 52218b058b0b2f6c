"""The feature table: a feature kind registered in one place flows through config, featurize,
train and predict -- here a kind computed by a (tiny) torch network from audio resampled to its
own rate, the shape of a pretrained-embedding feature."""

from __future__ import annotations

import numpy as np
import pytest

from genre_cli import featurize, fetch, predict, segment, train
from genre_cli.datasets import FetchOptions
from genre_cli.errors import UsageError
from genre_cli.features import FEATURES, FeatureConfig, compute, make_hint, output_shape, slot_choices
from genre_cli.features.kind import FRONTENDS, FeatureKind, Frontend, register, register_frontend
from genre_cli.features.kind import get as feature_kind
from genre_cli.formats import features as feat_format
from genre_cli.options import Option
from genre_cli.training.config import TrainConfig
from genre_cli.windows import SegmentConfig

from conftest import write_folder

RATE = 8000  # the toy network's own sample rate
DIM = 4


class ToyNetFrontend:
    """One chunk: the audio resampled to 8 kHz, then a fixed random projection of frame energies (torch)."""

    def __init__(self, y, cfg, kinds, workers=1):
        import soxr
        import torch

        y8 = np.stack([soxr.resample(s, cfg.sr, RATE) for s in y]).astype(np.float32) if cfg.sr != RATE else y
        frames = y8[:, : y8.shape[1] // 400 * 400].reshape(len(y8), -1, 400)
        energy = torch.from_numpy(np.log1p((frames**2).mean(-1)).mean(-1, keepdims=True).astype(np.float32))
        net = torch.nn.Linear(1, DIM)
        with torch.no_grad():
            net.weight.copy_(torch.arange(1.0, DIM + 1).reshape(DIM, 1))
            net.bias.zero_()
            self.embedding = net(energy).numpy()


def _check_length(cfg, n_samples):
    if n_samples * RATE // cfg.sr < 400:
        raise UsageError(f"toy embedding: segments of {n_samples} samples are shorter than 50 ms")
    return 0


@pytest.fixture
def toy_kind():
    """Registers the toy kind (what one new module in genre_cli/features/kinds/ would do) and removes it after."""
    register_frontend(Frontend("toy-net", make=ToyNetFrontend, check_length=_check_length))
    register(
        FeatureKind(
            "toy_embedding",
            slot="vector",
            order=65,
            options=(Option("toy", bool, False, "A toy network embedding.", flag="--toy", stored=False),),
            enabled=lambda cfg: cfg.toy,
            shape=lambda cfg, n: (DIM,),
            frontend="toy-net",
            compute=lambda front, cfg, out: out.__setitem__(slice(None), front.embedding),
            columns=lambda cfg: [f"toy{i}" for i in range(DIM)],
            suggested={"toy": True},
        )
    )
    yield
    for reg, name in ((FEATURES, "toy_embedding"), (FRONTENDS, "toy-net")):
        reg._items.pop(name)
        reg._meta.pop(name)


def test_a_registered_kind_is_an_option_an_output_and_a_slot_choice(toy_kind):
    cfg = FeatureConfig(mel=16, toy=True)
    assert cfg.names() == ["mel", "toy_embedding"]
    assert FeatureConfig(mel=16).to_params() == FeatureConfig.from_params(FeatureConfig(mel=16).to_params()).to_params()
    assert "toy" not in FeatureConfig(mel=16).to_params()  # not stored unless set: existing fingerprints stay
    assert cfg.to_params()["toy"] is True and FeatureConfig.from_params(cfg.to_params()) == cfg
    vector = slot_choices("vector")  # in order (65): after kaggle (60), before table (70); other kinds may sit between
    assert vector[:2] == ("handcrafted", "kaggle") and vector[-1] == "table" and vector.index("toy_embedding") > 1
    assert all(feature_kind(n).order < 65 for n in vector[: vector.index("toy_embedding")])
    assert make_hint("toy_embedding") == "--toy"
    assert "--toy" in [o.flag for o in FeatureConfig.cli_options()]
    y = np.random.default_rng(0).standard_normal((3, 22050)).astype(np.float32)
    out = compute(y, cfg)
    assert out["toy_embedding"].shape == (3, DIM) == (3, *output_shape("toy_embedding", cfg, 22050))
    np.testing.assert_allclose(out["toy_embedding"][:, 1], 2 * out["toy_embedding"][:, 0], rtol=1e-6)
    with pytest.raises(UsageError, match="shorter than 50 ms"):
        compute(y[:, :1000], FeatureConfig(toy=True))


def test_a_registered_kind_goes_through_featurize_train_and_predict(toy_kind, tmp_path, rng):
    music = write_folder(tmp_path / "music", per_label=3, seconds=2.0, sr=16000, rng=rng)
    idx = fetch.run("folder", source=str(music), options=FetchOptions(jobs=1, progress=False), out=tmp_path / "i.h5").path
    seg = segment.run(idx, config=SegmentConfig(seconds=0.5), out=tmp_path / "s.h5", jobs=1, show_progress=False).path
    feat = featurize.run(seg, config=FeatureConfig(toy=True), out=tmp_path / "f.h5", jobs=1, show_progress=False).path
    feats = feat_format.read(feat)
    assert feats.names == ["toy_embedding"] and feats.columns["toy_embedding"] == [f"toy{i}" for i in range(DIM)]
    model = train.run(feat, config=TrainConfig(model="logreg"), out=tmp_path / "m.h5", show_progress=False)
    assert model.summary["inputs"] == {"vector": "toy_embedding"}
    (res,) = predict.run(model.path, [music / "low" / "low0.wav"], jobs=1, device="cpu")
    assert isinstance(res, predict.Prediction) and res.n_windows == 4 and abs(res.proba.sum() - 1) < 1e-5
