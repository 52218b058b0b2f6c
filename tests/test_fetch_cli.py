"""`genre fetch` through the CLI: summary, exit codes, no index left behind on failure."""

from __future__ import annotations

import io
import json
import tarfile

import h5py
import pytest
from test_datasets import KNOWN, ArchiveServer, gtzan_targz  # noqa: F401  (fixture)
from typer.testing import CliRunner

from genre_cli.cli import app

from conftest import SHARED_DATA

runner = CliRunner()
GROOVE = SHARED_DATA / "groove-styles"


@pytest.mark.skipif(not GROOVE.exists(), reason="shared groove-styles data absent")
def test_exact_groove_command_keeps_official_split(tmp_path):
    out = tmp_path / "groove.h5"
    r = runner.invoke(
        app,
        [
            "fetch",
            "folder",
            "--from",
            str(GROOVE),
            "--labels",
            str(GROOVE / "tracks.csv"),
            "--label-column",
            "style",
            "--group-by",
            "drummer",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert "410 tracks" in r.stderr and "drummer" in r.stderr  # summary table + the group warning
    assert "the test split has no track of neworleans" in r.stderr
    with h5py.File(out) as f:
        labels = json.loads(f.attrs["labels"])
        split = f["tracks/split"].asstr()[()]
        path = f["tracks/path"].asstr()[()]
    assert len(labels) == 9 and len(split) == 410
    import csv

    with open(GROOVE / "tracks.csv") as fh:
        official = {r["path"]: r["split"] for r in csv.DictReader(fh)}
    assert all(official[p] == s for p, s in zip(path, split))


def test_gtzan_over_loopback_then_wrong_checksum_leaves_no_index(tmp_path, gtzan_targz):  # noqa: F811  (the fixture)
    good, bad = tmp_path / "good.h5", tmp_path / "bad.h5"
    with ArchiveServer(gtzan_targz.read_bytes()) as srv:
        r = runner.invoke(app, ["fetch", "gtzan", "--from", srv.url(), "--root", str(tmp_path / "data"), "-o", str(good)])
        assert r.exit_code == 0, r.stderr
        r2 = runner.invoke(
            app, ["fetch", "gtzan", "--from", srv.url(), "--root", str(tmp_path / "data2"), "--checksum", "md5:" + "0" * 32, "-o", str(bad)]
        )
    assert r2.exit_code == 1 and "checksum" in r2.stderr and "Traceback" not in r2.stderr
    assert not bad.exists() and not list(tmp_path.glob(".bad.h5*"))
    with h5py.File(good) as f:
        ids = f["tracks/track_id"].asstr()[()]
        split = f["tracks/split"].asstr()[()]
    got = dict(zip(ids, split))
    assert all(got[k] == v for k, v in KNOWN.items() if k in got) and len(got) == len(KNOWN)


def test_archive_with_path_traversal_is_refused(tmp_path):
    arc = tmp_path / "evil.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        data = b"x" * 10
        info = tarfile.TarInfo("../evil.wav")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    root = tmp_path / "root"
    r = runner.invoke(app, ["fetch", "gtzan", "--from", str(arc), "--root", str(root), "-o", str(tmp_path / "i.h5")])
    assert r.exit_code == 2 and "evil" in r.stderr
    assert not (tmp_path / "evil.wav").exists() and not (root.parent / "evil.wav").exists()
    assert not (tmp_path / "i.h5").exists()


def test_offline_with_nothing_on_disk_is_a_clear_failure(tmp_path):
    r = runner.invoke(app, ["fetch", "gtzan", "--offline", "--root", str(tmp_path), "-o", str(tmp_path / "i.h5")])
    assert r.exit_code == 1 and "offline" in r.stderr and "Traceback" not in r.stderr


def test_summary_says_how_folds_were_assigned(tmp_path):
    import numpy as np

    from conftest import write_folder

    src = write_folder(tmp_path / "music", per_label=4, seconds=0.5, sr=8000, rng=np.random.default_rng(0))
    r = runner.invoke(app, ["fetch", "folder", "--from", str(src), "--folds", "2", "-o", str(tmp_path / "a.h5")])
    assert r.exit_code == 0, r.stderr
    assert "folds: 2 (stratified by label): 6, 6 tracks" in r.stderr
    r = runner.invoke(app, ["fetch", "folder", "--from", str(src), "-o", str(tmp_path / "b.h5")])
    assert r.exit_code == 0, r.stderr
    assert "folds:" not in r.stderr


def _tiny_table_dataset(base):
    """``base/music``: a write_folder dataset (3 labels x 4 tracks); ``base/t.csv``: its labels table (path, style, split, performer)."""
    import numpy as np

    from conftest import write_folder, write_labels_table

    src = write_folder(base / "music", per_label=4, seconds=0.3, sr=8000, rng=np.random.default_rng(0))
    table = write_labels_table(src, splits=("train", "train", "validation", "test")).rename(base / "t.csv")
    return src, table  # the table outside --from, so only its own fingerprint can see it change


def _fetch_table(src, table, work, *extra):
    args = ["fetch", "folder", "--from", str(src), "--labels", str(table), "--label-column", "style", "--workdir", str(work), *extra]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    return r


def _index_labels(path) -> dict[str, str]:
    with h5py.File(path) as f:
        names = json.loads(f.attrs["labels"])
        return dict(zip(f["tracks/path"].asstr()[()], (names[i] for i in f["tracks/label"][()])))


def test_an_edited_labels_table_reruns_fetch_an_untouched_one_is_skipped(tmp_path):
    src, table = _tiny_table_dataset(tmp_path)
    work = tmp_path / "work"
    first = _fetch_table(src, table, work)
    assert "up to date" not in first.stderr
    again = _fetch_table(src, table, work)
    assert "up to date, skipped" in again.stderr and again.stdout == first.stdout
    text = table.read_text()
    table.write_text(text.replace("low/low0.wav,low,", "low/low0.wav,high,"))  # relabel one track
    edited = _fetch_table(src, table, work)
    assert "up to date" not in edited.stderr and edited.stdout != first.stdout
    assert _index_labels(edited.stdout.strip())["low/low0.wav"] == "high"
    assert _index_labels(first.stdout.strip())["low/low0.wav"] == "low"  # the old index is kept beside it
    table.write_text("".join(line for line in table.read_text().splitlines(True) if "noise3" not in line))  # delete a row
    shorter = _fetch_table(src, table, work)
    assert "up to date" not in shorter.stderr
    assert "noise/noise3.wav" not in _index_labels(shorter.stdout.strip()) and len(_index_labels(shorter.stdout.strip())) == 11
    assert "up to date, skipped" in _fetch_table(src, table, work).stderr


def test_a_split_column_named_but_absent_is_refused_the_default_one_absent_is_said(tmp_path):
    src, table = _tiny_table_dataset(tmp_path)
    base = ["fetch", "folder", "--from", str(src), "--labels", str(table), "--label-column", "style"]
    r = runner.invoke(app, [*base, "--split-column", "nosuch", "-o", str(tmp_path / "a.h5")])
    assert r.exit_code == 2 and "nosuch" in r.stderr and "path, style, split, performer" in r.stderr
    assert not (tmp_path / "a.h5").exists()
    r = runner.invoke(app, [*base, "--split-column", "split", "-o", str(tmp_path / "b.h5")])  # named and there: official
    assert r.exit_code == 0 and "split at random" not in r.stderr
    no_split = tmp_path / "nosplit.csv"
    no_split.write_text("".join(",".join(line.split(",")[:2] + line.split(",")[3:]) for line in table.read_text().splitlines(True)))
    r = runner.invoke(app, [*base[:5], str(no_split), *base[6:], "--seed", "4", "-o", str(tmp_path / "c.h5")])
    assert r.exit_code == 0, r.stderr
    assert "nosplit.csv has no 'split' column: the tracks are split at random (stratified by label, seed 4)" in r.stderr.replace("\n", " ")
    r = runner.invoke(app, ["fetch", "folder", "--from", str(src), "--split-column", "part", "-o", str(tmp_path / "d.h5")])
    assert r.exit_code == 2 and "--labels" in r.stderr


def test_demo_takes_folds_and_a_random_split_and_refuses_what_it_does_not_take(tmp_path):
    r = runner.invoke(app, ["fetch", "demo", "--folds", "3", "--split-mode", "random", "-o", str(tmp_path / "d2.h5")])
    assert r.exit_code == 0, r.stderr
    assert "folds: 3 (stratified by label, no drummer in two folds)" in r.stderr
    with h5py.File(tmp_path / "d2.h5") as f:
        assert sorted(set(f["tracks/fold"][()])) == [0, 1, 2]
        assert "grouped by 'drummer'" in json.loads(f.attrs["provenance"])["split_method"]
    r = runner.invoke(app, ["fetch", "demo", "--labels", "t.csv", "--label-column", "x", "-o", str(tmp_path / "d3.h5")])
    assert r.exit_code == 2 and "the demo dataset does not take --labels, --label-column" in r.stderr
    assert not (tmp_path / "d3.h5").exists()
    r = runner.invoke(app, ["fetch", "demo", "--seed", "3", "-o", str(tmp_path / "d4.h5")])
    assert r.exit_code == 0 and "--seed 3 does not change this index" in r.stderr.replace("\n", " ")


def test_files_missing_from_a_labels_table_are_reported_missing_not_corrupt(tmp_path):
    src, table = _tiny_table_dataset(tmp_path)
    (src / "high" / "high1.wav").unlink()
    (src / "noise" / "noise2.wav").write_bytes(b"not audio" * 50)
    r = _fetch_table(src, table, tmp_path / "work")
    assert "not ok: 1 corrupt, 1 missing" in r.stderr
    with h5py.File(r.stdout.strip()) as f:
        status = dict(zip(f["tracks/path"].asstr()[()], f["tracks/status"].asstr()[()]))
    assert status["high/high1.wav"] == "missing" and status["noise/noise2.wav"] == "corrupt"


def test_offline_message_names_the_from_option(tmp_path):
    r = runner.invoke(app, ["fetch", "gtzan", "--offline", "--root", str(tmp_path), "-o", str(tmp_path / "i.h5")])
    assert r.exit_code == 1 and "--from FILE" in r.stderr.replace("\n", " ") and "SOURCE" not in r.stderr
