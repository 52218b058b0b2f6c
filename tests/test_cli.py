"""The CLI contract end to end on generated audio: caching, reruns, errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from conftest import genre


def _statuses(stderr: str) -> dict[str, str]:
    out = {}
    for line in stderr.splitlines():
        for stage in ("fetch", "segment", "featurize", "train", "evaluate"):
            if line.startswith(f"✓ {stage}"):
                out[stage] = "ran"
            elif line.startswith(f"• {stage}: up to date"):
                out[stage] = "skipped"
            elif line.startswith(f"• {stage}: would run"):
                out[stage] = "would run"
    return out


def test_pipeline_caches_and_reruns_only_what_changed(audio_folder, tmp_path):
    base = [
        "run",
        "--dataset",
        "folder",
        "--from",
        audio_folder,
        "--seconds",
        "1",
        "--hop",
        "1",
        "--mel",
        "32",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--jobs",
        "1",
        "--workdir",
        tmp_path / "w",
    ]
    r1 = genre(*base)
    assert r1.exit_code == 0, r1.stderr
    assert _statuses(r1.stderr) == dict.fromkeys(("fetch", "segment", "featurize", "train", "evaluate"), "ran")
    assert "track-level accuracy:" in r1.stdout and "music, test split" in r1.stdout
    model = next(line.split(" → ")[1] for line in r1.stderr.splitlines() if line.startswith("✓ train"))
    with h5py.File(model) as f:  # `genre run` without --seed: the seed is the default, not a flag
        assert json.loads(f.attrs["train_sources"])["seed"] == "default"

    r2 = genre(*base)
    assert r2.exit_code == 0
    assert _statuses(r2.stderr) == dict.fromkeys(("fetch", "segment", "featurize", "train", "evaluate"), "skipped")
    assert r1.stdout == r2.stdout  # the same report, read back from the artifact

    r3 = genre(*[a if a != "32" else "16" for a in base])  # --mel 16
    assert _statuses(r3.stderr) == {"fetch": "skipped", "segment": "skipped", "featurize": "ran", "train": "ran", "evaluate": "ran"}
    # different settings live side by side
    feats = sorted(p.name for p in (tmp_path / "w" / "music").glob("feat-*.h5"))
    assert len(feats) == 2 and any("mel32" in f for f in feats) and any("mel16" in f for f in feats)

    r4 = genre(*base, "--dry-run", "--seconds", "2")
    assert _statuses(r4.stderr) == {
        "fetch": "skipped",
        "segment": "would run",
        "featurize": "would run",
        "train": "would run",
        "evaluate": "would run",
    }
    r5 = genre(*base, "--force")
    assert set(_statuses(r5.stderr).values()) == {"ran"}


def test_run_says_which_tracks_segment_skipped(audio_folder, tmp_path, rng):
    import soundfile as sf

    from conftest import synth

    sf.write(audio_folder / "low" / "short.wav", synth("low", 1.0, 16000, rng), 16000)  # shorter than one 2 s window
    argv = ["--dataset", "folder", "--from", audio_folder, "--seconds", "2", "--jobs", "1", "--workdir", tmp_path / "w"]
    r = genre("run", *argv)
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert "segment: 1 tracks skipped, 18 kept" in err and "skipped low/short.wav:" in err and "shorter than one window" in err
    # the same words as `genre segment`
    seg = genre("segment", next(tmp_path.glob("w/*/index-*.h5")), "--seconds", "2", "-o", tmp_path / "seg.h5")
    assert seg.exit_code == 0 and "1 tracks skipped" in seg.stderr and "skipped low/short.wav:" in " ".join(seg.stderr.split())


def test_stage_commands_chain_and_info(audio_folder, tmp_path):
    idx, seg, feat, model = (tmp_path / n for n in ("idx.h5", "seg.h5", "feat.h5", "model.h5"))
    r = genre("fetch", "folder", "--from", audio_folder, "-o", idx)
    assert r.exit_code == 0 and r.stdout.strip() == str(idx)
    assert "18 tracks" in r.stderr and "1 non-audio files" in r.stderr
    assert genre("segment", idx, "--seconds", "1", "--hop", "0.5", "-o", seg).exit_code == 0
    with h5py.File(seg) as f:
        assert len(f["segments/track"]) == 18 * 7  # (4 s - 1 s) / 0.5 s + 1 windows per track
    assert genre("featurize", seg, "--mel", "24", "-o", feat, "--jobs", "2").exit_code == 0
    r = genre("train", feat, "--model", "cnn6", "--epochs", "1", "--device", "cpu", "-o", model)
    assert r.exit_code == 0, r.stderr
    r = genre("evaluate", model, feat, "--json", "-o", tmp_path / "eval.h5")
    assert sorted(p.name for p in (tmp_path / "eval-plots").iterdir()) == [
        "model-confusion-segment.png",
        "model-confusion-track.png",
        "model-history.png",
    ]  # plots go next to the report
    rep = json.loads(r.stdout)[0]
    for level in ("segment", "track"):
        assert {"accuracy", "balanced_accuracy", "macro_f1", "auc", "confusion"} <= set(rep[level])
    assert rep["split"] == "test" and rep["dataset"] == "music" and rep["n_tracks"] > 0
    r = genre("info", feat)
    assert r.exit_code == 0 and "stage featurize" in r.stdout and "features/mel" in r.stdout and "high, low, noise" in r.stdout
    assert "segments: segment" in r.stdout and "matches" in r.stdout
    r = genre("predict", model, audio_folder / "low", "--format", "jsonl")
    assert r.exit_code == 0
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 6 and all(x["genre"] in ("low", "high", "noise") for x in lines)
    assert "1 non-audio files ignored" in r.stderr


def test_missing_input_says_which_command_makes_it(tmp_path):
    r = genre("segment", tmp_path / "nope.h5")
    assert r.exit_code == 2
    assert "does not exist" in r.stderr and "run `genre fetch` first" in r.stderr and "Traceback" not in r.stderr


def test_wrong_artifact_kind_is_bad_input(audio_folder, tmp_path):
    idx = tmp_path / "idx.h5"
    genre("fetch", "folder", "--from", audio_folder, "-o", idx)
    r = genre("featurize", idx, "--mel", "8")
    assert r.exit_code == 2 and "is a 'fetch' artifact, expected segment" in r.stderr


def test_unknown_names_list_the_valid_ones(tmp_path):
    r = genre("fetch", "nosuchset")
    assert r.exit_code == 2 and "unknown dataset 'nosuchset'" in r.stderr and "demo" in r.stderr
    r = genre("run", "--model", "nosuchmodel", "--workdir", tmp_path)
    assert r.exit_code == 2 and "unknown model 'nosuchmodel'" in r.stderr and "cnn6" in r.stderr


def test_cuda_without_gpu_is_an_error_not_a_fallback(audio_folder, tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    idx, seg, feat = (tmp_path / n for n in ("idx.h5", "seg.h5", "feat.h5"))
    genre("fetch", "folder", "--from", audio_folder, "-o", idx)
    genre("segment", idx, "--seconds", "1", "-o", seg)
    genre("featurize", seg, "--mel", "16", "-o", feat)
    r = genre("train", feat, "--device", "cuda", "--epochs", "1")
    assert r.exit_code == 2 and "no CUDA device" in r.stderr


def test_demo_dataset_is_embedded(tmp_path):
    from genre_cli.datasets import DATASETS
    from genre_cli.formats import index as index_format

    r = genre("fetch", "demo", "--workdir", tmp_path)
    assert r.exit_code == 0
    assert "161 tracks" in r.stderr and "161 real drum performances, 4 styles" in DATASETS.meta("demo")["description"]
    idx = index_format.read(r.stdout.strip())
    with h5py.File(idx.path) as f:
        labels = json.loads(f.attrs["labels"])
    splits, drummers = idx.tracks["split"].astype(str), idx.tracks["group"].astype(str)
    assert labels == ["funk", "hiphop", "jazz", "latin"]
    assert [int((splits == s).sum()) for s in ("train", "validation", "test")] == [115, 0, 46]
    # performer-disjoint, and recorded as such so that `genre evaluate` refuses a shared drummer
    assert set(drummers[splits == "test"]) == {"drummer4", "drummer7", "drummer10"}
    assert not set(drummers[splits == "test"]) & set(drummers[splits == "train"])
    assert idx.provenance.group_by == "drummer" and idx.provenance.group_aware
    assert "performer-disjoint" in idx.provenance.split_method
    demo = Path(__file__).resolve().parents[1] / "genre_cli" / "data" / "demo"
    assert sum(p.stat().st_size for p in demo.rglob("*") if p.is_file()) < 5_000_000  # the demo's size budget


def test_demo_split_is_the_rule_chosen_one():
    """The shipped split is the one tools/demo_data.py's fixed rule draws from the shipped tracks."""
    import csv

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    try:
        from tools.demo_data import performer_disjoint_splits, shipped_split
    finally:
        sys.path.remove(str(root))
    rows = list(csv.DictReader(open(root / "genre_cli" / "data" / "demo" / "tracks.csv", newline="")))
    held = shipped_split(performer_disjoint_splits(rows))
    assert [r["split"] for r in rows] == ["test" if r["drummer"] in held else "train" for r in rows]
    assert sum(r["split"] == "test" for r in rows) >= 20


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["predict", "--help"], ["run", "--help"], ["serve", "--help"]])
def test_help_does_not_import_heavy_libraries(argv):
    code = (
        "import sys\n"
        "from genre_cli.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'librosa', 'sklearn', 'scipy', 'starlette', 'uvicorn', 'python_multipart') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage" in proc.stdout


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "genre_cli", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip()


def test_unexpected_error_is_one_line_with_a_report_hint(monkeypatch, audio_folder, tmp_path):
    import genre_cli.fetch

    def boom(*args, **kwargs):
        raise ValueError("something nobody expected\nsecond line")

    monkeypatch.setattr(genre_cli.fetch, "run", boom)
    r = genre("fetch", "folder", "--from", audio_folder, "-o", tmp_path / "i.h5")
    assert r.exit_code == 1
    assert "Traceback" not in r.stderr and "second line" not in r.stderr
    assert "unexpected ValueError in `genre fetch`: something nobody expected" in r.stderr
    assert "genre --debug fetch" in r.stderr and "report" in r.stderr

    with pytest.raises(ValueError, match="something nobody expected"):  # --debug: the real exception, with its traceback
        genre("--debug", "fetch", "folder", "--from", audio_folder, "-o", tmp_path / "i.h5")


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "argv, target, kept",
    [
        (["fetch", "demo"], "genre_cli.fetch.run", "no index was written; a download under way is kept"),
        (["segment", "i.h5"], "genre_cli.segment.run", "nothing half-written was kept; rerun the command to start over"),
        (["featurize", "s.h5", "--mel", "8"], "genre_cli.featurize.run", "nothing half-written was kept; rerun the command to start over"),
        (["featurize", "--table", "t.csv"], "genre_cli.table.run", "nothing half-written was kept; rerun the command to start over"),
        (["train", "f.h5"], "genre_cli.train.run", "no model was written"),
        (["evaluate", "m.h5", "f.h5"], "genre_cli.evaluate.run", "no report was written; rerun the command to start over"),
        (["predict", "genres", "a.wav"], "genre_cli.predict.run", "0 file(s) were classified and their lines written to stdout"),
        (["run"], "genre_cli.pipeline.run", "the stages that had finished are kept and are skipped when you rerun `genre run`"),
        (["info", "x.h5"], "genre_cli.describe.describe", "interrupted: nothing was written"),
        (["serve", "m.h5"], "genre_cli.serve.app.load", "the server stopped; uploads are not kept"),
    ],
)
def test_interrupt_says_what_each_command_kept(monkeypatch, tmp_path, argv, target, kept):
    module, _, name = target.rpartition(".")
    if target == "genre_cli.predict.run":

        def fake(*args, **kwargs):
            raise KeyboardInterrupt
            yield

        monkeypatch.setattr(module + "." + name, fake)
    else:
        monkeypatch.setattr(module + "." + name, _interrupt)
    r = genre(*argv, *(["--workdir", tmp_path] if argv[0] == "run" else []))
    assert r.exit_code == 130, r.stderr
    assert kept in r.stderr and "Traceback" not in r.stderr
    assert "--resume" not in r.stderr  # only an interrupted train that checkpointed an epoch says --resume (test_interrupt.py)
