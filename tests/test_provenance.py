"""Provenance travels forward (index → segments → features → model → report); files written
before it existed (no ``provenance`` attribute) keep loading and report the same split."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from genre_cli import artifacts, evaluate, featurize, fetch, segment, table, train
from genre_cli.datasets import FetchOptions
from genre_cli.datasets.table import TableOptions
from genre_cli.features import FeatureConfig
from genre_cli.formats import features as feat_format
from genre_cli.formats import index as index_format
from genre_cli.formats import model as model_format
from genre_cli.formats import segments as seg_format
from genre_cli.training.config import TrainConfig
from genre_cli.windows import SegmentConfig

from conftest import genre, write_folder, write_labels_table


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """index, segments, features and a model made from a folder with a group-aware random split."""
    base = tmp_path_factory.mktemp("prov")
    music = write_folder(base / "music", per_label=4, seconds=2.0, sr=16000, rng=np.random.default_rng(3))
    table = write_labels_table(music, splits=("train", "train", "validation", "test"))
    opts = FetchOptions(labels_csv=table, label_column="style", group_by="performer", split="random", folds=2, jobs=1, progress=False)
    idx = fetch.run("folder", source=str(music), options=opts, out=base / "idx.h5").path
    seg = segment.run(idx, config=SegmentConfig(seconds=0.5), out=base / "seg.h5", jobs=1, show_progress=False).path
    feat = featurize.run(seg, config=FeatureConfig(handcrafted=True), out=base / "feat.h5", jobs=1, show_progress=False).path
    model = train.run(feat, config=TrainConfig(model="logreg"), out=base / "model.h5", show_progress=False).path
    return {"base": base, "idx": idx, "seg": seg, "feat": feat, "model": model}


def test_provenance_is_recorded_by_fetch_and_copied_by_every_stage(chain):
    prov = index_format.read(chain["idx"]).provenance
    assert prov.dataset == "music" and prov.group_by == "performer" and prov.group_aware and prov.folds == 2
    assert "grouped by 'performer'" in prov.split_method and prov.index == str(chain["idx"])
    assert seg_format.read(chain["seg"]).provenance == prov
    assert feat_format.read(chain["feat"]).provenance == prov
    assert model_format.read(chain["model"]).provenance == prov


def _old_layout(src: Path, dst: Path) -> Path:
    """``src`` as the code before the provenance attribute wrote it."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        del f.attrs["provenance"]
    return dst


def test_files_without_provenance_load_and_get_it_from_upstream(chain, tmp_path):
    """Old-layout files (no provenance): read through the upstream chain, as evaluate did before."""
    old = {k: _old_layout(chain[k], tmp_path / f"{k}.h5") for k in ("idx", "seg", "feat", "model")}
    # the upstream paths recorded in the copies point at the originals; make them point at the copies
    for k, up in (("seg", "idx"), ("feat", "seg")):
        with h5py.File(old[k], "r+") as f:
            ups = json.loads(f.attrs["upstream"])
            role = next(iter(ups))
            ups[role]["path"] = str(old[up])
            f.attrs["upstream"] = artifacts.canonical_json(ups)
    new = feat_format.read(chain["feat"]).provenance
    assert index_format.read(old["idx"]).provenance.split_method == new.split_method
    for k in ("seg", "feat"):
        prov = (seg_format if k == "seg" else feat_format).read(old[k]).provenance
        assert (prov.split_method, prov.group_by, prov.group_aware) == (new.split_method, new.group_by, new.group_aware), k
        assert prov.index == str(old["idx"])
    rep = evaluate.run([old["model"]], old["feat"], out=tmp_path / "ev.h5").summary["reports"][0]
    assert rep["split_method"] == new.split_method and rep["leakage"]["group_policy"] == "refuse"
    # with the chain broken the split is unknown: reported, never refused
    old["idx"].unlink()
    prov = feat_format.read(old["feat"]).provenance
    assert prov.split_method == "unknown" and not prov.group_aware


def test_a_newer_schema_is_refused_with_a_clear_message(chain, tmp_path):
    p = shutil.copy(chain["feat"], tmp_path / "future.h5")
    with h5py.File(p, "r+") as f:
        f.attrs["schema_version"] = feat_format.KIND.schema + 1
    r = genre("train", p, "--model", "logreg", "-o", tmp_path / "m.h5")
    assert r.exit_code == 2 and f"schema version {feat_format.KIND.schema + 1}" in r.stderr and "upgrade genre_cli" in r.stderr


def _feature_table(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "f1", "f2", "label", "split"])
        for i in range(24):
            w.writerow(
                [f"t{i}.wav", rng.normal(i % 2 * 3, 1), rng.normal(0, 1), "ab"[i % 2], ("train", "train", "validation", "test")[i % 4]]
            )
    return path


def test_evaluate_on_table_features_names_the_tables_split(tmp_path):
    csv_path = _feature_table(tmp_path / "t.csv")
    r = genre("featurize", "--table", csv_path, "-o", tmp_path / "t.h5")
    assert r.exit_code == 0, r.stderr
    assert genre("train", tmp_path / "t.h5", "--model", "logreg", "-o", tmp_path / "m.h5").exit_code == 0
    r = genre("evaluate", tmp_path / "m.h5", tmp_path / "t.h5", "--no-plots", "-o", tmp_path / "e.h5")
    assert r.exit_code == 0, r.stderr
    assert "split test (the table's split column)" in r.stderr and "(unknown)" not in r.stderr
    rep = json.loads((tmp_path / "e.json").read_text())[0]
    assert rep["split_method"] == "the table's split column" and rep["index"] is None
    # a random split of the table is named as such
    res = table.run(csv_path, options=TableOptions(split="random", seed=1), out=tmp_path / "r.h5")
    assert feat_format.read(res.path).provenance.split_method.startswith("random stratified by track (seed 1")


def test_old_table_features_name_their_split_from_the_attribute_they_had(tmp_path):
    csv_path = _feature_table(tmp_path / "t.csv")
    res = table.run(csv_path, out=tmp_path / "t.h5")
    old = _old_layout(res.path, tmp_path / "old.h5")
    with h5py.File(old, "r+") as f:
        f.attrs["split_method"] = "the table's split column"  # what imported tables carried before
    assert feat_format.read(old).provenance.split_method == "the table's split column"
