"""``genre featurize --embedding musicnn-msd|musicnn-mtt``: shapes, columns, the 16 kHz resampling,
short windows refused, fingerprints of other features unchanged, a head trained on it."""

from __future__ import annotations

import numpy as np
import pytest

from genre_cli import featurize, fetch, segment, train
from genre_cli.datasets import FetchOptions
from genre_cli.errors import UsageError
from genre_cli.features import FeatureConfig, column_names, compute, output_shape, slot_choices
from genre_cli.formats import features as feat_format
from genre_cli.pretrained import load_musicnn
from genre_cli.pretrained.embed import embed_windows
from genre_cli.pretrained.variants import MSD_TAGS, MTT_TAGS
from genre_cli.training.config import TrainConfig
from genre_cli.windows import SegmentConfig

from conftest import genre, write_folder


def test_config_columns_and_shapes():
    cfg = FeatureConfig(embedding="musicnn-mtt", sr=22050)
    assert cfg.names() == ["musicnn_embedding", "musicnn_tags"]
    assert output_shape("musicnn_embedding", cfg, 3 * 22050) == (200,) and output_shape("musicnn_tags", cfg, 3 * 22050) == (50,)
    assert column_names("musicnn_tags", cfg) == list(MTT_TAGS)
    assert column_names("musicnn_tags", cfg.replace(embedding="musicnn-msd")) == list(MSD_TAGS)
    assert column_names("musicnn_embedding", cfg)[:2] == ["emb0", "emb1"]
    assert {"musicnn_embedding", "musicnn_tags"} <= set(slot_choices("vector"))
    # not stored unless set: every features file made before the option existed keeps its fingerprint
    assert "embedding" not in FeatureConfig(mel=64).to_params()
    with pytest.raises(UsageError, match="valid: musicnn-msd, musicnn-mtt"):
        FeatureConfig(embedding="vggish")


def test_windows_are_resampled_to_16k_and_short_ones_refused(rng):
    y22 = 0.1 * rng.standard_normal((3, 3 * 22050)).astype(np.float32)
    out = compute(y22, FeatureConfig(embedding="musicnn-msd", sr=22050))
    # the same numbers as embedding the windows directly (each resampled to 16 kHz, one 3-s patch)
    emb, lik = embed_windows(load_musicnn("msd"), y22, 22050, short="error")
    np.testing.assert_allclose(out["musicnn_embedding"], emb, atol=1e-5)
    np.testing.assert_allclose(out["musicnn_tags"], lik, atol=1e-6)
    assert out["musicnn_tags"].min() >= 0 and out["musicnn_tags"].max() <= 1
    with pytest.raises(UsageError, match="at least 2.976 s"):
        compute(y22[:, : int(2.9 * 22050)], FeatureConfig(embedding="musicnn-msd", sr=22050))


def test_featurize_embedding_then_train_a_head(tmp_path, rng):
    music = write_folder(tmp_path / "music", per_label=3, seconds=6.5, sr=22050, rng=rng)
    idx = fetch.run("folder", source=str(music), options=FetchOptions(jobs=1, progress=False), out=tmp_path / "i.h5").path
    seg = segment.run(idx, config=SegmentConfig(seconds=3.0), out=tmp_path / "s.h5", jobs=1, show_progress=False).path
    res = genre("featurize", seg, "--embedding", "musicnn-msd", "-o", tmp_path / "f.h5", "--jobs", "2")
    assert res.exit_code == 0, res.output
    feats = feat_format.read(tmp_path / "f.h5")
    assert feats.names == ["musicnn_embedding", "musicnn_tags"]
    assert feats.shapes == {"musicnn_embedding": (200,), "musicnn_tags": (50,)} and len(feats.segments["track"]) == 18
    assert feats.columns["musicnn_tags"] == list(MSD_TAGS) and feats.feature_config["embedding"] == "musicnn-msd"
    # worker processes give the numbers of the in-process computation
    one = featurize.run(seg, config=FeatureConfig(embedding="musicnn-msd"), out=tmp_path / "f1.h5", jobs=1, show_progress=False)
    np.testing.assert_array_equal(feat_format.read(one.path).load("musicnn_embedding"), feats.load("musicnn_embedding"))
    model = train.run(tmp_path / "f.h5", config=TrainConfig(model="logreg"), out=tmp_path / "m.h5", show_progress=False)
    assert model.summary["inputs"] == {"vector": "musicnn_embedding"}
    bad = genre(
        "featurize", segment.run(idx, config=SegmentConfig(seconds=2.0), out=tmp_path / "s2.h5", jobs=1).path, "--embedding", "musicnn-mtt"
    )
    assert bad.exit_code == 2 and "--seconds 3" in bad.output
