"""``genre predict``: folders, stdin, formats, failures and exit codes, streaming decode."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genre_cli import audio, windows
from genre_cli import predict as pred
from genre_cli.audio import load
from genre_cli.errors import UsageError
from genre_cli.features import FeatureConfig, compute
from genre_cli.inference import load_classifier
from genre_cli.windows import SegmentConfig

from conftest import genre, synth


@pytest.fixture(scope="module")
def model(tiny_model) -> Path:
    """A tiny CNN on 1 s windows (hop 0.5 s) of 16 kHz audio resampled to 22.05 kHz."""
    return tiny_model


@pytest.fixture
def mixed_folder(tmp_path, rng) -> Path:
    """3 good files (wav 16 kHz mono, flac 44.1 kHz stereo, ogg 8 kHz), a .txt, an empty .wav,
    a corrupt .mp3 (random bytes) and a .wav that is really text."""
    root = tmp_path / "mixed"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "a.wav", synth("low", 2.5, 16000, rng), 16000)
    stereo = np.stack([synth("high", 3.2, 44100, rng), synth("high", 3.2, 44100, rng)], axis=1)
    sf.write(root / "sub" / "b.flac", stereo, 44100)
    sf.write(root / "sub" / "c.ogg", synth("noise", 0.7, 8000, rng), 8000)  # shorter than one window
    (root / "notes.txt").write_text("not audio")
    (root / "empty.wav").write_bytes(b"")
    (root / "sub" / "broken.mp3").write_bytes(np.random.default_rng(3).bytes(4000))
    (root / "sub" / "fake.wav").write_text("RIFF? no, just text pretending to be a wav file")
    return root


GOOD = ("a.wav", "b.flac", "c.ogg")
BAD = ("empty.wav", "broken.mp3", "fake.wav")


def test_folder_good_lines_bad_reasons_exit_1(model, mixed_folder):
    r = genre("predict", model, mixed_folder, "--device", "cpu")
    assert r.exit_code == 1
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert sorted(Path(row[0]).name for row in rows) == sorted(GOOD)
    for row in rows:
        assert len(row) == 3 and row[1] in ("low", "high", "noise") and 0 < float(row[2]) <= 1
    failed = [line for line in r.stderr.splitlines() if line.startswith("failed ")]
    assert len(failed) == 3
    reasons = {Path(line.split(": ")[0].removeprefix("failed ")).name: line for line in failed}
    assert set(reasons) == set(BAD)
    assert "empty file" in reasons["empty.wav"] and "not decodable audio" in reasons["broken.mp3"]
    assert "3 classified, 3 failed, 1 non-audio files ignored" in r.stderr


def test_all_bad_exit_2_and_no_audio_exit_2(model, mixed_folder, tmp_path):
    r = genre("predict", model, *(mixed_folder / p for p in ("empty.wav", "sub/broken.mp3")), "--device", "cpu")
    assert r.exit_code == 2 and r.stdout == "" and "0 classified, 2 failed" in r.stderr
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("x")
    r = genre("predict", model, tmp_path / "nothing", "--device", "cpu")
    assert r.exit_code == 2 and "no audio files found" in r.stderr


def test_unusable_model_exit_2(model, mixed_folder):
    feat = model.parent / "feat.h5"  # not a model
    r = genre("predict", feat, mixed_folder / "a.wav")
    assert r.exit_code == 2 and "expected train" in r.stderr and r.stdout == ""


def test_stdin_paths_jsonl_top_k_and_output_file(model, mixed_folder, tmp_path):
    listing = "".join(f"{mixed_folder / p}\n" for p in ("a.wav", "sub/b.flac", "empty.wav"))
    out = tmp_path / "res.jsonl"
    r = genre("predict", model, "-", "--format", "jsonl", "--top-k", "2", "--output", out, "--device", "cpu", input=listing)
    assert r.exit_code == 1 and r.stdout == ""
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(x["path"]).name for x in recs] == ["a.wav", "b.flac"]  # input order
    for x in recs:
        assert len(x["top"]) == 2 and x["top"][0]["probability"] >= x["top"][1]["probability"]
        assert x["genre"] == x["top"][0]["genre"] == max(x["probabilities"], key=x["probabilities"].get)
        assert sum(x["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert recs[0]["duration"] == pytest.approx(2.5, abs=1e-3) and recs[1]["duration"] == pytest.approx(3.2, abs=1e-3)


def test_csv_header_top_k_and_timeline_covers_the_file(model, mixed_folder):
    r = genre(
        "predict",
        model,
        mixed_folder / "sub" / "b.flac",
        mixed_folder / "sub" / "c.ogg",
        "--format",
        "csv",
        "--top-k",
        "2",
        "--timeline",
        "--device",
        "cpu",
    )
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == ["path", "genre", "probability", "genre_2", "probability_2", "start", "end"]
    whole = [x for x in rows if x["start"] == ""]
    assert [Path(x["path"]).name for x in whole] == ["b.flac", "c.ogg"]
    wins = [x for x in rows if x["start"] != "" and x["path"].endswith("b.flac")]
    starts, ends = [float(x["start"]) for x in wins], [float(x["end"]) for x in wins]
    assert starts[0] == 0.0 and ends[-1] == pytest.approx(3.2, abs=0.01)  # 3.2 s, 1 s windows every 0.5 s
    assert starts[:5] == [0.0, 0.5, 1.0, 1.5, 2.0] and starts[-1] == pytest.approx(2.2, abs=0.01)  # end-aligned last window
    assert all(b <= e for b, e in zip(starts[1:], ends[:-1]))  # no gaps
    short = [x for x in rows if x["start"] != "" and x["path"].endswith("c.ogg")]
    assert len(short) == 1 and float(short[0]["end"]) == pytest.approx(0.7, abs=0.01)  # one padded window


def test_jsonl_timeline(model, mixed_folder):
    r = genre("predict", model, mixed_folder / "a.wav", "--format", "jsonl", "--timeline", "--device", "cpu")
    rec = json.loads(r.stdout)
    assert rec["n_windows"] == len(rec["windows"]) == 4  # 2.5 s: 1 s windows at 0, 0.5, 1, 1.5 s
    assert rec["windows"][-1]["end"] == pytest.approx(2.5)
    assert all(w["genre"] == w["top"][0]["genre"] for w in rec["windows"])


def test_plan_windows_and_windower_match_for_any_block_size(rng):
    seg = SegmentConfig(sr=1000, seconds=1.0, hop=0.3)
    for n in (0, 1, 999, 1000, 1001, 2345, 5000):
        y = rng.standard_normal(n).astype(np.float32)
        spans = windows.plan_windows(n, seg)
        if n:
            assert spans[0][0] == 0 and spans[-1][0] + min(spans[-1][1], n) == n
        expected = [np.pad(y[s : s + k], (0, 1000 - k)) for s, k in spans]
        for block in (1, 7, 300, 1000, 4096):
            w = windows.Windower(seg)
            got = [x for i in range(0, n, block) for x in w.push(y[i : i + block])] + w.finish()
            assert [s for s, _ in got] == [s for s, _ in spans]
            for (_, a), b in zip(got, expected):
                np.testing.assert_array_equal(a, b)


def test_blockwise_equals_whole_file(model, tmp_path, rng):
    """A 44.1 kHz stereo file decoded in 1.5 s blocks (9 blocks) gives the whole-file numbers."""
    path = tmp_path / "long.wav"
    y = np.concatenate([synth(k, 4.4, 44100, rng) for k in ("low", "noise", "high")])
    sf.write(path, np.stack([y, 0.5 * y], axis=1), 44100)
    clf = load_classifier(model, device="cpu")
    blocks = list(audio.stream(path, 22050, block_seconds=1.5))
    assert len(blocks) >= 8
    whole, _ = load(path, sr=22050)
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)
    # reference: whole file in memory, same window plan, one compute() call
    seg = pred.windows_for(clf)
    spans = windows.plan_windows(len(whole), seg)
    x = np.stack([np.pad(whole[s : s + k], (0, seg.win - k)) for s, k in spans])
    ref = clf.predict_proba(compute(x, FeatureConfig.from_params(clf.feature_config)))
    (res,) = pred.run(clf, [path], jobs=2, timeline=True, block_seconds=1.5, batch_size=5)
    got = np.stack([p for _, _, p in res.windows])
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(res.proba, ref.mean(0), atol=1e-4)
    assert res.n_windows == len(spans) and res.duration == pytest.approx(13.2, abs=1e-3)


def test_many_files_batched_across_files_keep_input_order(model, tmp_path, rng):
    paths = []
    for i in range(7):
        p = tmp_path / f"f{i}.wav"
        sf.write(p, synth(("low", "high", "noise")[i % 3], 1.0 + 0.3 * i, 16000, rng), 16000)
        paths.append(p)
    clf = load_classifier(model, device="cpu")
    one = {r.path: r.proba for p in paths for r in pred.run(clf, [p], jobs=1)}
    many = list(pred.run(clf, paths, jobs=2, batch_size=64))
    assert [r.path for r in many] == paths
    for r in many:
        np.testing.assert_allclose(r.proba, one[r.path], atol=1e-5)


def test_ffmpeg_formats(model, mixed_folder, tmp_path, monkeypatch):
    m4a = tmp_path / "clip.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x18ftypM4A not really")  # what it holds does not matter when ffmpeg is absent
    monkeypatch.setattr(audio, "ffmpeg_available", lambda: False)
    (res,) = pred.run(model, [m4a], jobs=1, device="cpu")
    assert isinstance(res, pred.Failure) and "need ffmpeg, which is not installed" in res.reason
    monkeypatch.undo()
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg not installed")
    for ext in ("m4a", "opus"):
        out = tmp_path / f"real.{ext}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(mixed_folder / "a.wav"), str(out)], check=True, timeout=60)
        (res,) = pred.run(model, [out], jobs=1, device="cpu")
        assert isinstance(res, pred.Prediction), getattr(res, "reason", "")
        assert res.duration == pytest.approx(2.5, abs=0.1)


def test_torch_threads_leave_cores_to_the_decoders_and_are_restored(model, mixed_folder, monkeypatch):
    import torch

    from genre_cli.inference import Classifier

    seen = []
    orig = Classifier.predict_proba

    def spy(self, feats, **kw):
        seen.append(torch.get_num_threads())
        return orig(self, feats, **kw)

    monkeypatch.setattr(Classifier, "predict_proba", spy)
    monkeypatch.setattr(pred, "available_cores", lambda: 5)
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        res = list(pred.run(model, [mixed_folder / "a.wav"], jobs=2, device="cpu"))
        assert isinstance(res[0], pred.Prediction) and seen and set(seen) == {3}  # 5 cores - 2 decoders
        assert torch.get_num_threads() == 4  # restored
    finally:
        torch.set_num_threads(before)


def test_model_description_loads_without_weights(model):
    desc = load_classifier(model, weights=False)
    full = load_classifier(model, device="cpu")
    assert desc.model is None and full.model is not None
    assert (desc.labels, desc.inputs, desc.feature_config, desc.segment_config) == (
        full.labels,
        full.inputs,
        full.feature_config,
        full.segment_config,
    )


def test_record_is_the_jsonl_line(model, mixed_folder):
    """`predict.record` is the one place the JSON record is built: the CLI's jsonl line equals it."""
    path = mixed_folder / "sub" / "b.flac"
    r = genre("predict", model, path, "--format", "jsonl", "--top-k", "2", "--timeline", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    (res,) = pred.run(model, [path], jobs=1, device="cpu", timeline=True)
    rec = pred.record(res, top_k=2, timeline=True)
    assert json.loads(r.stdout) == json.loads(json.dumps(rec))
    assert list(rec) == ["path", "genre", "probability", "duration", "n_windows", "top", "probabilities", "windows"]
    assert rec["path"] == str(path) and pred.record(res, path="b.flac")["path"] == "b.flac"
    assert "windows" not in pred.record(res) and len(pred.record(res)["top"]) == 1
    assert len(rec["windows"]) == rec["n_windows"] and all(len(w["top"]) == 2 for w in rec["windows"])


def test_max_seconds_analyses_the_beginning_only(model, tmp_path, rng):
    y = synth("noise", 3.3, 22050, rng)  # the model's rate: no resampler, so the cut is exact
    sf.write(tmp_path / "long.wav", y, 22050)
    sf.write(tmp_path / "head.wav", y[: 2 * 22050], 22050)
    (cut,) = pred.run(model, [tmp_path / "long.wav"], jobs=1, device="cpu", timeline=True, max_seconds=2.0)
    (head,) = pred.run(model, [tmp_path / "head.wav"], jobs=1, device="cpu", timeline=True)
    assert cut.truncated and not head.truncated and cut.duration == pytest.approx(2.0)
    assert [w[:2] for w in cut.windows] == [w[:2] for w in head.windows] and cut.windows[-1][1] == pytest.approx(2.0)
    np.testing.assert_allclose(cut.proba, head.proba, rtol=1e-5)
    (whole,) = pred.run(model, [tmp_path / "long.wav"], jobs=1, device="cpu", max_seconds=3.3)  # exactly its length
    assert not whole.truncated and whole.duration == pytest.approx(3.3, abs=1e-4)
    with pytest.raises(UsageError):
        next(pred.run(model, [tmp_path / "long.wav"], max_seconds=0))


# ----------------------------------------------------------------------------- the tester's findings


@pytest.mark.parametrize("timeline", [False, True])
def test_top_k_above_the_labels_is_capped_and_csv_columns_line_up(model, mixed_folder, timeline):
    """3 labels, --top-k 6: the header has 3 label/score pairs like every row, and start/end stay in place."""
    r = genre("predict", model, mixed_folder / "a.wav", "--format", "csv", "--top-k", "6", *(["--timeline"] * timeline), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert "--top-k 6 is more than the model's 3 labels: all 3 are listed" in r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line.split(",")) == len(lines[0].split(",")) for line in lines)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    pairs = ["genre", "probability", "genre_2", "probability_2", "genre_3", "probability_3"]
    assert list(rows[0]) == ["path", *pairs] + (["start", "end"] if timeline else [])
    assert all(None not in row and {row["genre"], row["genre_2"], row["genre_3"]} == {"low", "high", "noise"} for row in rows)
    if timeline:
        assert rows[0]["start"] == rows[0]["end"] == ""  # the whole-file row
        wins = rows[1:]
        assert len(wins) == 4 and [float(x["start"]) for x in wins] == [0.0, 0.5, 1.0, 1.5] and float(wins[-1]["end"]) == 2.5
    tsv = genre("predict", model, mixed_folder / "a.wav", "--top-k", "6", "--device", "cpu")
    assert len(tsv.stdout.splitlines()[0].split("\t")) == 7


def test_a_result_is_yielded_while_the_next_input_has_not_arrived(model, mixed_folder):
    """Paths from a slow pipe: the first file's result comes out before the second path is read."""
    import threading

    released = threading.Event()
    waited: list[bool] = []

    def slow_stdin():
        yield mixed_folder / "a.wav"
        waited.append(released.wait(timeout=120))  # False: nobody got the first result meanwhile
        yield mixed_folder / "sub" / "b.flac"

    results = pred.run(model, slow_stdin(), jobs=2, device="cpu")
    first = next(results)
    released.set()
    rest = list(results)
    assert waited == [True], "the first result waited for the next input line"
    assert [Path(r.path).name for r in (first, *rest)] == ["a.wav", "b.flac"]  # input order as before


def test_an_error_reading_the_inputs_is_raised_by_run(model, mixed_folder):
    def broken():
        yield mixed_folder / "a.wav"
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    with pytest.raises(UnicodeDecodeError):
        list(pred.run(model, broken(), jobs=1, device="cpu"))


def test_output_that_cannot_be_written_is_refused_before_any_work(model, mixed_folder, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("predict ran although its output cannot be written")

    monkeypatch.setattr(pred, "run", never)
    for bad, reason in ((tmp_path / "nonexistent" / "dir" / "x.tsv", "No such file or directory"), (tmp_path, "Is a directory")):
        r = genre("predict", model, mixed_folder / "a.wav", "--output", bad)
        assert r.exit_code == 2 and f"cannot write {bad}: {reason}" in r.stderr and "unexpected" not in r.stderr
    assert not (tmp_path / "nonexistent").exists()
    monkeypatch.undo()
    old = tmp_path / "old.tsv"
    old.write_text("kept\n")
    assert genre("predict", model, mixed_folder / "a.wav", "--output", old, "--device", "cpu").exit_code == 0
    assert Path(old.read_text().split("\t")[0]) == mixed_folder / "a.wav"  # an existing file is replaced
    monkeypatch.chdir(tmp_path)
    r = genre("predict", model, mixed_folder / "a.wav", "--output", "-", "--device", "cpu")
    assert r.exit_code == 0 and r.stdout.startswith(str(mixed_folder / "a.wav")) and not (tmp_path / "-").exists()


def test_output_to_a_pipe_a_dangling_link_and_a_name_too_long(model, mixed_folder, tmp_path):
    """--output to a named pipe is written (not probed: a probe would end the reader); to a link
    whose target is not there yet, the target is created; a path too long is one failed file."""
    import os
    import threading

    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = genre("predict", model, mixed_folder / "a.wav", "--output", fifo, "--device", "cpu")
    reader.join(timeout=60)
    assert r.exit_code == 0 and not reader.is_alive() and got[0].startswith(str(mixed_folder / "a.wav").encode())
    link = tmp_path / "dangling.tsv"
    link.symlink_to("target.tsv")
    r = genre("predict", model, mixed_folder / "a.wav", "--output", link, "--device", "cpu")
    assert r.exit_code == 0 and (tmp_path / "target.tsv").read_text().startswith(str(mixed_folder / "a.wav"))
    long = str(tmp_path / ("x" * 300 + ".wav"))
    r = genre("predict", model, "-", "--device", "cpu", input=f"{long}\n{mixed_folder / 'a.wav'}\n")
    assert r.exit_code == 1 and r.stdout.startswith(str(mixed_folder / "a.wav"))  # the batch went on
    assert "File name too long" in r.stderr and "unexpected" not in r.stderr


def test_vote_is_refused_for_a_tagger(tmp_path, rng):
    sf.write(tmp_path / "clip.wav", synth("noise", 3.5, 16000, rng), 16000)
    r = genre("predict", "musicnn-msd", tmp_path / "clip.wav", "--aggregate", "vote", "--device", "cpu")
    assert r.exit_code == 2 and r.stdout == ""
    assert "aggregation 'vote' needs a classifier (one label per window); musicnn-msd is a tagger" in r.stderr
    assert "use 'mean'" in r.stderr
    with pytest.raises(UsageError, match="needs a classifier"):
        next(pred.run("musicnn-msd", [tmp_path / "clip.wav"], aggregate="vote"))


def test_help_says_what_a_taggers_output_is():
    text = " ".join(genre("predict", "--help").stdout.split())
    assert "jsonl keys" not in text and '"output": "sigmoid"' in text and "csv header says `tag` and `likelihood`" in text


def test_symlinked_folders_are_followed_once_and_loops_are_not_errors(model, tmp_path, rng):
    outside = tmp_path / "elsewhere" / "albums"
    outside.mkdir(parents=True)
    sf.write(outside / "linked.wav", synth("low", 1.2, 16000, rng), 16000)
    lib = tmp_path / "lib"
    (lib / "albums").mkdir(parents=True)
    sf.write(lib / "albums" / "own.wav", synth("high", 1.2, 16000, rng), 16000)
    (lib / "albums" / "link").symlink_to(outside, target_is_directory=True)
    (lib / "albums" / "same").symlink_to(outside, target_is_directory=True)  # the same folder twice: walked once
    (lib / "albums" / "loop").symlink_to("..", target_is_directory=True)  # a loop to the root
    (outside / "back").symlink_to(outside.parent, target_is_directory=True)  # a loop in the linked tree
    r = genre("predict", model, lib, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert [Path(line.split("\t")[0]).relative_to(lib).as_posix() for line in r.stdout.splitlines()] == [
        "albums/own.wav",
        "albums/link/linked.wav",
    ]
    assert "2 classified, 0 failed, 0 non-audio files ignored" in r.stderr


def test_fetch_folder_walks_symlinked_label_folders_like_predict(tmp_path, rng):
    from genre_cli.formats import index as index_format

    for label in ("low", "high"):
        (tmp_path / "store" / label).mkdir(parents=True)
        sf.write(tmp_path / "store" / label / f"{label}.wav", synth(label, 1.0, 16000, rng), 16000)
    (tmp_path / "data" / "low").mkdir(parents=True)
    sf.write(tmp_path / "data" / "low" / "own.wav", synth("low", 1.0, 16000, rng), 16000)
    (tmp_path / "data" / "low" / "more").symlink_to(tmp_path / "store" / "low", target_is_directory=True)
    (tmp_path / "data" / "high").symlink_to(tmp_path / "store" / "high", target_is_directory=True)
    (tmp_path / "data" / "low" / "loop").symlink_to("..", target_is_directory=True)
    (tmp_path / "data" / "high" / "._high.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    r = genre("fetch", "folder", "--from", tmp_path / "data", "-o", tmp_path / "idx.h5")
    assert r.exit_code == 0, r.stderr
    assert sorted(index_format.read(tmp_path / "idx.h5").tracks["path"]) == ["high/high.wav", "low/more/low.wav", "low/own.wav"]
    walked = [p.relative_to(tmp_path / "data").as_posix() for p in pred.iter_inputs([str(tmp_path / "data")], pred.WalkStats())]
    assert walked == ["high/high.wav", "low/own.wav", "low/more/low.wav"]


def test_tsv_is_plain_with_tabs_newlines_and_backslashes_escaped(model, tmp_path, rng):
    names = ['say "hi".wav', "tab\there.wav", "new\nline.wav", "back\\slash, comma.wav"]
    for name in names:
        sf.write(tmp_path / name, synth("low", 1.2, 16000, rng), 16000)
    r = genre("predict", model, *(tmp_path / n for n in names), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.split("\n")[:-1]
    assert len(lines) == 4 and all(line.count("\t") == 2 for line in lines)
    unescape = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    import re

    got = [re.sub(r"\\[\\tnr]", lambda m: unescape[m.group()], line.split("\t")[0]) for line in lines]
    assert got == [str(tmp_path / n) for n in names]
    assert lines[0].split("\t")[0] == str(tmp_path / 'say "hi".wav')  # no csv quoting
    csv_rows = list(csv.reader(io.StringIO(genre("predict", model, tmp_path / names[0], "--format", "csv", "--device", "cpu").stdout)))
    assert csv_rows[1][0] == str(tmp_path / names[0])  # csv stays RFC 4180 (quoted, read back by a csv reader)


def test_hidden_files_and_folders_are_skipped_and_counted(model, tmp_path, rng):
    root = tmp_path / "lib"
    (root / ".hidden-dir").mkdir(parents=True)
    sf.write(root / "song.wav", synth("low", 1.2, 16000, rng), 16000)
    (root / "._song.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    sf.write(root / ".hidden-dir" / "x.wav", synth("low", 1.2, 16000, rng), 16000)
    (root / "cover.jpg").write_bytes(b"\xff\xd8")
    r = genre("predict", model, root, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert [Path(line.split("\t")[0]).name for line in r.stdout.splitlines()] == ["song.wav"]
    assert "1 classified, 0 failed, 1 non-audio files ignored, 3 hidden files/folders skipped" in r.stderr
    explicit = genre("predict", model, root / "._song.wav", "--device", "cpu")  # a hidden file named explicitly is tried
    assert explicit.exit_code == 2 and "._song.wav" in explicit.stderr


def test_whitespace_only_stdin_lines_are_skipped(model, mixed_folder):
    r = genre("predict", model, "-", "--device", "cpu", input=f"  \n\t\n{mixed_folder / 'a.wav'}\n \r\n\n")
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1 and "1 classified, 0 failed" in r.stderr


def test_ctrl_c_before_the_first_result_says_the_output_file_was_not_touched(model, mixed_folder, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(pred, "run", interrupted)
    old = tmp_path / "old.tsv"
    old.write_text("previous results\n")
    r = genre("predict", model, mixed_folder / "a.wav", "--output", old)
    assert r.exit_code == 130
    assert f"no file was classified yet and nothing was written: {old} was not touched" in " ".join(r.stderr.split())
    assert "written to" not in r.stderr and old.read_text() == "previous results\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_full_disk_is_a_clear_error_not_a_bug(model, mixed_folder):
    """Writing to a full device (/dev/full: ENOSPC on every write) names the output and errno, exit 1."""
    r = genre("predict", model, mixed_folder / "a.wav", "--output", "/dev/full", "--device", "cpu")
    assert r.exit_code == 1 and "writing /dev/full failed: No space left on device (errno 28)" in r.stderr
    assert "unexpected" not in r.stderr
