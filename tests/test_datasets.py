"""The gtzan and folder datasets (offline: loopback HTTP, generated audio, shared real data)."""

from __future__ import annotations

import csv
import hashlib
import tarfile
import threading
import zipfile
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genre_cli.datasets import TRACK_COLUMNS, FetchOptions, get_dataset, list_datasets
from genre_cli.errors import DownloadError, InputError, UsageError

from conftest import write_folder

GROOVE = Path("/work/shared/data/groove-styles")
GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
# (clip, expected split) straight from the shipped lists; "" = outside the filtered 930.
KNOWN = {
    "blues.00000": "validation",
    "blues.00012": "test",
    "blues.00029": "train",
    "classical.00000": "validation",
    "classical.00011": "test",
    "classical.00042": "",  # excluded (a repeat/version found by Sturm)
    "country.00019": "train",
    "country.00030": "test",
    "disco.00005": "train",
    "disco.00001": "test",
    "hiphop.00002": "train",
    "hiphop.00081": "validation",
    "jazz.00000": "train",
    "jazz.00054": "train",
    "metal.00002": "train",
    "metal.00012": "test",
    "pop.00000": "test",
    "pop.00010": "validation",
    "reggae.00000": "train",
    "reggae.00061": "validation",
    "rock.00000": "train",
    "rock.00010": "test",
}


def tone(path: Path, *, seconds: float = 0.1, sr: int = 22050, freq: float = 440.0, fmt: str | None = None) -> None:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format=fmt, subtype="PCM_16")


def gtzan_tree(base: Path, *, ext: str) -> Path:
    """``base/<genre>/<genre>.000NN.<ext>`` for every clip in KNOWN."""
    for i, clip in enumerate(sorted(KNOWN)):
        genre = clip.split(".")[0]
        (base / genre).mkdir(parents=True, exist_ok=True)
        tone(base / genre / f"{clip}.{ext}", freq=200 + 20 * i, fmt="AU" if ext == "au" else "WAV")
    return base


class ArchiveServer:
    """Serves one file at /genres.tar.gz on 127.0.0.1 (404 elsewhere), at most 20 requests."""

    def __init__(self, body: bytes):
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.paths.append(self.path)
                if self.path != "/genres.tar.gz" or len(outer.paths) > 20:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/genres.tar.gz") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def gtzan_targz(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("gtzan_src")
    gtzan_tree(work / "genres", ext="au")
    (work / "genres" / "input.mf").write_text("blues/blues.00000.au\tblues\n")  # the original ships .mf lists
    arc = work / "genres.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(work / "genres", arcname="genres")
    return arc


def md5_of(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def rows(index) -> dict[str, dict]:
    cols = index.tracks
    return {cols["track_id"][i]: {k: cols[k][i] for k in cols} for i in range(len(index))}


def opts(**kw) -> FetchOptions:
    return FetchOptions(progress=False, jobs=2, **kw)


def test_datasets_are_registered():
    assert {"folder", "gtzan"} <= set(list_datasets())


# -- gtzan -----------------------------------------------------------------------------------------


def test_gtzan_download_verify_extract_index(tmp_path: Path, gtzan_targz: Path):
    with ArchiveServer(gtzan_targz.read_bytes()) as srv:
        index = get_dataset("gtzan")(source=srv.url(), root=tmp_path, options=opts(checksum=md5_of(gtzan_targz)))
        assert srv.paths == ["/genres.tar.gz"]
    assert set(index.tracks) == set(TRACK_COLUMNS)
    assert index.labels == GENRES and len(index) == len(KNOWN)
    r = rows(index)
    for clip, split in KNOWN.items():
        assert r[clip]["split"] == split, clip
        assert r[clip]["path"] == f"{clip.split('.')[0]}/{clip}.au"
        assert index.labels[r[clip]["label"]] == clip.split(".")[0]
        assert r[clip]["sr"] == 22050 and r[clip]["channels"] == 1 and abs(r[clip]["duration"] - 0.1) < 1e-3
        assert r[clip]["checksum"].startswith("md5:") and r[clip]["group"] == ""
    ex = r["classical.00042"]
    assert (ex["status"], ex["reason"], ex["split"]) == ("excluded", "not in the artist-filtered split", "")
    assert {r[c]["status"] for c in KNOWN if c != "classical.00042"} == {"ok"}
    # The archive landed in the data root, verified, and was extracted safely beside it.
    assert (tmp_path / "gtzan" / "genres.tar.gz").is_file()
    assert index.info["archive_checksum"] == md5_of(gtzan_targz)
    assert index.root.is_relative_to(tmp_path / "gtzan") and index.root.name == "genres"
    assert (index.root / "blues" / "blues.00012.au").is_file()
    assert index.info["skipped_files"] == 1  # input.mf
    assert index.info["n_missing"] == 930 - (len(KNOWN) - 1)
    assert any("missing" in w for w in index.info["warnings"])
    # A second run reuses the verified archive and the extraction: no network at all.
    again = get_dataset("gtzan")(source=srv.url(), root=tmp_path, options=opts(checksum=md5_of(gtzan_targz), offline=True))
    assert list(again.tracks["track_id"]) == list(index.tracks["track_id"])


def test_gtzan_default_mirrors_in_order(tmp_path: Path, gtzan_targz: Path, monkeypatch):
    import genre_cli.datasets.gtzan as gt

    with ArchiveServer(gtzan_targz.read_bytes()) as srv:
        monkeypatch.setattr(gt, "REMOTES", (gt.Remote(srv.url("/dead/genres.tar.gz"), "dead"), gt.Remote(srv.url(), "good")))
        monkeypatch.setattr(gt, "ARCHIVE_MD5", md5_of(gtzan_targz))
        index = get_dataset("gtzan")(source=None, root=tmp_path, options=opts())
        assert srv.paths == ["/dead/genres.tar.gz", "/genres.tar.gz"]
    assert index.info["downloaded_from"] == srv.url() and len(index) == len(KNOWN)


def test_gtzan_wrong_checksum_leaves_no_archive(tmp_path: Path, gtzan_targz: Path):
    with ArchiveServer(gtzan_targz.read_bytes()) as srv:
        with pytest.raises(DownloadError, match="checksum"):
            get_dataset("gtzan")(source=srv.url(), root=tmp_path, options=opts(checksum="md5:" + "1" * 32))
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_gtzan_offline_without_data_fails_clearly(tmp_path: Path):
    with pytest.raises(DownloadError) as err:
        get_dataset("gtzan")(source=None, root=tmp_path, options=opts(offline=True))
    msg = str(err.value)
    assert "offline" in msg and "huggingface.co/datasets/marsyas/gtzan" in msg and "Traceback" not in msg


def test_gtzan_kaggle_zip_with_corrupt_member(tmp_path: Path):
    src = tmp_path / "src"
    gtzan_tree(src / "Data" / "genres_original", ext="wav")
    (src / "Data" / "genres_original" / "jazz" / "jazz.00054.wav").write_bytes(b"\x00garbage, not a wav\xff" * 40)
    (src / "Data" / "images_original" / "blues").mkdir(parents=True)
    (src / "Data" / "images_original" / "blues" / "blues00000.png").write_bytes(b"\x89PNG")
    (src / "Data" / "features_30_sec.csv").write_text("filename,label\n")
    arc = tmp_path / "archive.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(src).as_posix())
    index = get_dataset("gtzan")(source=str(arc), root=tmp_path / "data", options=opts())
    r = rows(index)
    bad = r["jazz.00054"]
    assert bad["status"] == "corrupt" and "not decodable" in bad["reason"] and "jazz.00054.wav" in bad["reason"]
    assert bad["split"] == "train"  # the list's split is recorded; status says it is unusable
    assert {r[c]["status"] for c in KNOWN if c not in ("jazz.00054", "classical.00042")} == {"ok"}
    assert r["classical.00042"]["status"] == "excluded"
    assert index.root.as_posix().endswith("Data/genres_original") and r["blues.00012"]["path"] == "blues/blues.00012.wav"
    assert index.info["n_corrupt"] == 1 and index.info["layout"] == "kaggle (.wav)"
    assert any("jazz.00054" in w for w in index.info["warnings"])


def test_gtzan_extracted_folder_and_random_split(tmp_path: Path):
    gtzan_tree(tmp_path / "genres", ext="wav")
    index = get_dataset("gtzan")(source=str(tmp_path), root=tmp_path / "unused", options=opts(split="random", seed=3))
    assert not (tmp_path / "unused").exists()  # an extracted folder is indexed in place
    assert set(index.tracks["status"]) == {"ok"}  # random: the 70 are not excluded
    assert set(index.tracks["split"]) <= {"train", "validation", "test"}
    assert any("inflate accuracy" in w for w in index.info["warnings"])
    same = get_dataset("gtzan")(source=str(tmp_path), root=tmp_path / "unused", options=opts(split="random", seed=3))
    assert list(same.tracks["split"]) == list(index.tracks["split"])
    with pytest.raises(UsageError, match="--checksum applies to an archive"):  # a folder has no checksum to check
        get_dataset("gtzan")(source=str(tmp_path), root=tmp_path / "unused", options=opts(checksum="md5:" + "0" * 32))


# -- folder ----------------------------------------------------------------------------------------


def groove_csv() -> dict[str, dict[str, str]]:
    with open(GROOVE / "tracks.csv", newline="") as f:
        return {rec["path"]: rec for rec in csv.DictReader(f)}


@pytest.fixture(scope="module")
def groove_official():
    if not (GROOVE / "tracks.csv").is_file():
        pytest.skip("shared groove-styles data not available")
    return get_dataset("folder")(
        source=str(GROOVE),
        root=Path("/nonexistent"),
        options=opts(labels_csv=GROOVE / "tracks.csv", label_column="style", group_by="drummer"),
    )


def test_folder_groove_official_split_kept(groove_official):
    index, table = groove_official, groove_csv()
    assert len(index) == 410 and len(index.labels) == 9
    assert index.labels == sorted(index.labels) and "rock" in index.labels
    assert set(index.tracks["status"]) == {"ok"}
    for i in range(len(index)):
        rec = table[index.tracks["path"][i]]
        assert index.tracks["split"][i] == rec["split"]
        assert index.labels[index.tracks["label"][i]] == rec["style"]
        assert index.tracks["group"][i] == rec["drummer"]
    assert (index.info["n_train"], index.info["n_validation"], index.info["n_test"]) == (295, 43, 72)
    assert index.info["split_method"].startswith("official")
    # The official split is not drummer-disjoint: kept, with a warning.
    assert any("drummer" in w and "more than one side" in w for w in index.info["warnings"])
    assert index.root == GROOVE.resolve() and np.all((index.tracks["duration"] > 1) & (index.tracks["duration"] <= 30.01))


def test_folder_groove_random_split_is_drummer_disjoint():
    if not (GROOVE / "tracks.csv").is_file():
        pytest.skip("shared groove-styles data not available")
    index = get_dataset("folder")(
        source=str(GROOVE),
        root=Path("/nonexistent"),
        options=opts(labels_csv=GROOVE / "tracks.csv", label_column="style", group_by="drummer", split="random", folds=3),
    )
    sides: dict[str, set[str]] = defaultdict(set)
    folds: dict[str, set[int]] = defaultdict(set)
    for g, s, k in zip(index.tracks["group"], index.tracks["split"], index.tracks["fold"]):
        sides[g].add(s)
        folds[g].add(int(k))
    assert len(sides) == 10 and all(len(s) == 1 for s in sides.values())
    assert set(index.tracks["split"]) == {"train", "validation", "test"}
    assert all(len(f) == 1 for f in folds.values()) and set(index.tracks["fold"]) == {0, 1, 2}
    # scikit-learn's StratifiedGroupKFold places the 10 drummers greedily: the seed changes nothing, and fetch says so
    assert [w.split(":")[0] for w in index.info["warnings"]] == ["with groups, the seed hardly changes this split"] * 1 + [
        "with groups, the seed hardly changes this fold assignment"
    ]


def make_folder(base: Path, per_label: int = 10) -> Path:
    for j, label in enumerate(["rock", "jazz", "folk"]):
        sub = base / label / ("live" if label == "folk" else "")
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            tone(sub / f"{label}_{i:02d}.wav", seconds=0.05, freq=300 + 50 * j + i)
    (base / "rock" / "notes.txt").write_text("liner notes")
    (base / "jazz" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    (base / ".DS_Store").write_bytes(b"\x00")  # hidden: ignored, not counted
    return base


def test_folder_per_label_walk_skips_and_seeded_split(tmp_path: Path):
    base = make_folder(tmp_path / "music")
    (base / "rock" / "broken.wav").write_bytes(b"not audio at all" * 10)
    index = get_dataset("folder")(source=str(base), root=tmp_path / "root", options=opts(seed=7))
    assert index.labels == ["folk", "jazz", "rock"]
    assert len(index) == 31 and index.info["skipped_files"] == 2
    assert set(index.info["skipped_examples"]) == {"rock/notes.txt", "jazz/cover.jpg"}
    r = rows(index)
    assert r["folk/live/folk_03"]["label"] == 0 and r["folk/live/folk_03"]["path"] == "folk/live/folk_03.wav"
    assert r["rock/broken"]["status"] == "corrupt" and r["rock/broken"]["split"] == "" and r["rock/broken"]["reason"]
    ok = index.tracks["status"] == "ok"
    for lab in range(3):  # stratified: 10 per label → 7 / 2 / 1 with fractions 0.15/0.15... rounding
        splits = list(index.tracks["split"][ok & (index.tracks["label"] == lab)])
        assert splits.count("test") == 2 and splits.count("validation") == 2 and splits.count("train") == 6
    same = get_dataset("folder")(source=str(base), root=tmp_path / "root", options=opts(seed=7))
    other = get_dataset("folder")(source=str(base), root=tmp_path / "root", options=opts(seed=8))
    assert list(same.tracks["split"]) == list(index.tracks["split"])
    assert list(other.tracks["split"]) != list(index.tracks["split"])
    assert set(index.tracks["fold"]) == {-1}


def test_folder_table_split_names_and_errors(tmp_path: Path):
    base = make_folder(tmp_path / "music", per_label=2)
    table = tmp_path / "labels.csv"
    names = ["training", "dev", "testing", "val", "TRAIN", "valid"]
    paths = sorted(p.relative_to(base).as_posix() for p in base.rglob("*.wav"))
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "genre", "part", "artist"])
        for p, s in zip(paths, names):
            w.writerow([p, p.split("/")[0], s, "a" + p[-5]])
    index = get_dataset("folder")(
        source=str(base), root=tmp_path, options=opts(labels_csv=table, label_column="genre", split_column="part")
    )
    assert list(index.tracks["split"]) == ["train", "validation", "test", "validation", "train", "validation"]
    with pytest.raises(UsageError, match="official"):
        get_dataset("folder")(source=str(base), root=tmp_path, options=opts(labels_csv=table, label_column="genre", split="official"))
    with pytest.raises(InputError, match="nope"):
        get_dataset("folder")(source=str(base), root=tmp_path, options=opts(labels_csv=table, label_column="nope"))
    with open(table, "a", newline="") as f:
        csv.writer(f).writerow(["rock/missing.wav", "rock", "train", "x"])
    index = get_dataset("folder")(
        source=str(base), root=tmp_path, options=opts(labels_csv=table, label_column="genre", split_column="part")
    )
    missing = rows(index)["rock/missing"]
    assert missing["status"] == "missing" and "no such file" in missing["reason"] and missing["split"] == "train"
    assert index.info["n_missing"] == 1 and index.info["n_corrupt"] == 0
    with open(table, "a", newline="") as f:
        csv.writer(f).writerow(["rock/rock_99.wav", "rock", "holdout", "x"])
    with pytest.raises(InputError, match="holdout"):
        get_dataset("folder")(source=str(base), root=tmp_path, options=opts(labels_csv=table, label_column="genre", split_column="part"))
    with pytest.raises(UsageError, match="group-by"):
        get_dataset("folder")(source=str(base), root=tmp_path, options=opts(group_by="artist"))


def test_probe_many_keeps_order_and_returns_errors(tmp_path: Path):
    from genre_cli.audio import AudioInfo
    from genre_cli.errors import AudioError
    from genre_cli.probe import probe_many

    paths = []
    for i in range(6):
        p = tmp_path / f"t{i}.wav"
        tone(p, seconds=0.01 * (i + 1))
        paths.append(p)
    (tmp_path / "bad.wav").write_bytes(b"junk" * 20)
    paths.insert(3, tmp_path / "bad.wav")
    paths.append(tmp_path / "absent.wav")
    out = probe_many(paths, jobs=2, progress=False)
    assert isinstance(out[3], AudioError) and "bad.wav" in str(out[3])
    assert isinstance(out[-1], AudioError) and "no such file" in str(out[-1])
    good = [o for i, o in enumerate(out) if i not in (3, len(out) - 1)]
    assert all(isinstance(o, AudioInfo) for o in good)
    assert [o.duration for o in good] == pytest.approx([0.01 * (i + 1) for i in range(6)], abs=1e-3)


def test_folder_with_its_labels_one_level_down_is_refused_with_the_path_to_use(tmp_path: Path, rng):
    """GTZAN's layout (``genres/<genre>/...``) given one level too high would make one label."""
    write_folder(tmp_path / "gtzan" / "genres", per_label=2, seconds=1.0, sr=8000, rng=rng)
    with pytest.raises(UsageError) as exc:
        get_dataset("folder")(source=str(tmp_path / "gtzan"), root=tmp_path / "root", options=opts())
    msg = str(exc.value)
    assert "one folder, 'genres'" in msg and "3 folders: high, low, noise" in msg and f"--from {tmp_path / 'gtzan' / 'genres'}" in msg
    index = get_dataset("folder")(source=str(tmp_path / "gtzan" / "genres"), root=tmp_path / "root", options=opts())
    assert index.labels == ["high", "low", "noise"]
    # one label without sub-folders of its own is a valid evaluation set: indexed, with a warning
    one = get_dataset("folder")(source=str(tmp_path / "gtzan" / "genres" / "low" / ".."), root=tmp_path / "root", options=opts())
    assert one.labels == ["high", "low", "noise"]  # (the same folder through '..': not one label)
    (tmp_path / "eval" / "low").mkdir(parents=True)
    for f in (tmp_path / "gtzan" / "genres" / "low").iterdir():
        (tmp_path / "eval" / "low" / f.name).write_bytes(f.read_bytes())
    for sub in ("live", "studio"):  # sub-folders beside files in the label folder: still one label
        (tmp_path / "eval" / "low" / sub).mkdir()
        (tmp_path / "eval" / "low" / sub / "x.wav").write_bytes((tmp_path / "eval" / "low" / "low0.wav").read_bytes())
    single = get_dataset("folder")(source=str(tmp_path / "eval"), root=tmp_path / "root", options=opts())
    assert single.labels == ["low"] and len(single) == 4
    assert any("one label only ('low')" in w and "cannot be trained" in w for w in single.info["warnings"]), single.info["warnings"]


# -- which options change an index ----------------------------------------------------------------


def _fp(dataset: str, tmp_path: Path, source: str | None = None, **kw) -> str:
    from genre_cli import fetch

    return fetch.run(dataset, source=source, options=opts(**kw), workdir=tmp_path / "work", dry_run=True).fingerprint


def test_the_seed_changes_the_index_fingerprint_only_when_the_split_or_folds_use_it(tmp_path: Path):
    from conftest import write_folder, write_labels_table

    base = write_folder(tmp_path / "music", per_label=4, seconds=0.2, sr=8000, rng=np.random.default_rng(0))
    with_split = write_labels_table(base, splits=("train", "train", "validation", "test")).rename(tmp_path / "t.csv")
    no_split = tmp_path / "nosplit.csv"
    no_split.write_text("".join(",".join(line.split(",")[:2] + line.split(",")[3:]) for line in with_split.read_text().splitlines(True)))
    gtzan_tree(tmp_path / "gtzan" / "genres", ext="wav")
    table = {"labels_csv": with_split, "label_column": "style"}
    fixed = [  # (dataset, source, options): the split does not depend on the seed
        ("demo", None, {}),
        ("gtzan", str(tmp_path / "gtzan"), {}),
        ("gtzan", str(tmp_path / "gtzan"), {"split": "official"}),
        ("folder", str(base), table),
        ("folder", str(base), table | {"group_by": "performer"}),
    ]
    for dataset, source, kw in fixed:
        assert _fp(dataset, tmp_path, source, seed=0, **kw) == _fp(dataset, tmp_path, source, seed=1, **kw), (dataset, kw)
    drawn = fixed + [  # ... and with a random split or folds it does
        ("folder", str(base), {}),
        ("folder", str(base), {"labels_csv": no_split, "label_column": "style"}),
    ]
    for dataset, source, kw in drawn:
        for extra in ({"split": "random"}, {"folds": 2}):
            if "split" in kw and "split" in extra:
                continue
            args = kw | extra
            assert _fp(dataset, tmp_path, source, seed=0, **args) != _fp(dataset, tmp_path, source, seed=1, **args), (dataset, args)
    for dataset, source, kw in drawn[-2:]:  # a plain folder or a table without a split column: a random split
        assert _fp(dataset, tmp_path, source, seed=0, **kw) != _fp(dataset, tmp_path, source, seed=1, **kw), kw
    # The indexes the fixed cases would build are the same for both seeds, array for array.
    a = get_dataset("folder")(source=str(base), root=tmp_path, options=opts(seed=0, **table))
    b = get_dataset("folder")(source=str(base), root=tmp_path, options=opts(seed=5, **table))
    assert all(np.array_equal(a.tracks[k], b.tracks[k]) for k in a.tracks) and "seed" not in a.info


def test_genre_run_with_another_seed_keeps_the_fixed_index(tmp_path: Path):
    from genre_cli import pipeline

    def fetch_path(seed: int, **fetch_kw) -> Path:
        cfg = pipeline.PipelineConfig(fetch=opts(seed=seed, **fetch_kw), workdir=tmp_path / "work")
        return pipeline.run(cfg, dry_run=True, show_progress=False)[0].path

    assert fetch_path(0) == fetch_path(1)
    assert fetch_path(0, split="random") != fetch_path(1, split="random")


def test_demo_random_split_and_folds_are_grouped_by_drummer(tmp_path: Path):
    demo = get_dataset("demo")
    own = demo(source=None, root=tmp_path, options=opts())
    assert set(own.tracks["fold"]) == {-1} and own.info["split_method"].startswith("the demo's own")
    index = demo(source=None, root=tmp_path, options=opts(split="random", folds=3, seed=1))
    t = index.tracks
    assert index.labels == own.labels and list(t["track_id"]) == list(own.tracks["track_id"])
    assert list(t["split"]) != list(own.tracks["split"]) and set(t["split"]) == {"train", "validation", "test"}
    assert "grouped by 'drummer'" in index.info["split_method"] and index.info["seed"] == 1
    assert set(t["fold"]) == {0, 1, 2}
    for drummer in set(t["group"]):  # no drummer on two sides, nor in two folds
        mine = t["group"] == drummer
        assert len(set(t["split"][mine])) == 1 and len(set(t["fold"][mine])) == 1, drummer
    with pytest.raises(UsageError, match="drummer"):
        demo(source=None, root=tmp_path, options=opts(group_by="artist"))


@pytest.mark.parametrize(
    ("dataset", "kw", "flags"),
    [
        ("demo", {"labels_csv": Path("t.csv"), "label_column": "style"}, "--labels, --label-column"),
        ("demo", {"checksum": "md5:" + "0" * 32}, "--checksum"),
        ("gtzan", {"group_by": "artist"}, "--group-by"),
        ("gtzan", {"split_column": "part"}, "--split-column"),
        ("folder", {"checksum": "md5:" + "0" * 32}, "--checksum"),
    ],
)
def test_an_option_a_dataset_does_not_take_is_refused(tmp_path: Path, dataset: str, kw: dict, flags: str):
    from genre_cli import fetch

    with pytest.raises(UsageError, match=f"does not take {flags}"):
        fetch.run(dataset, source=str(tmp_path), options=opts(**kw), workdir=tmp_path / "work", dry_run=True)


def test_a_table_with_no_train_track_is_said(tmp_path: Path, rng):
    root = write_folder(tmp_path / "music", per_label=2, seconds=1.0, sr=8000, rng=rng)
    table = tmp_path / "t.csv"
    rows = [f"{lab}/{lab}{i}.wav,{lab},test" for lab in ("high", "low", "noise") for i in range(2)]
    table.write_text("path,label,split\n" + "\n".join(rows) + "\n")
    index = get_dataset("folder")(source=str(root), root=tmp_path / "root", options=opts(labels_csv=table))
    assert set(index.tracks["split"]) == {"test"}
    assert any("no track is in the train split" in w for w in index.info["warnings"]), index.info["warnings"]
