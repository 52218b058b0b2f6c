"""Options are declared once by their config class: same names, defaults and checks in the
library and in every command that exposes them (fetch, segment, featurize, train, run)."""

from __future__ import annotations

import pytest
import typer.main

from genre_cli import pipeline
from genre_cli.cli import app
from genre_cli.datasets import FetchOptions
from genre_cli.datasets.table import TableOptions
from genre_cli.errors import UsageError
from genre_cli.features import FeatureConfig
from genre_cli.training.config import TrainConfig
from genre_cli.windows import SegmentConfig

from conftest import genre, write_folder

CONFIGS = (SegmentConfig, FeatureConfig, TrainConfig, FetchOptions, TableOptions)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_config_refuses_unknown_keys(cls):
    with pytest.raises(UsageError, match="unknown"):
        cls.from_params({"bogus": 1})
    assert cls.from_params({}) == cls()  # missing keys take the defaults


def test_library_messages_name_the_option_and_its_flag():
    for make, text in (
        (lambda: SegmentConfig(hop=0), "hop (--hop)"),
        (lambda: SegmentConfig(last="keep"), "last (--last)"),
        (lambda: FetchOptions(folds=-1), "folds (--folds)"),
        (lambda: FetchOptions(split="bogus"), "split (--split-mode)"),
        (lambda: TrainConfig(optimizer="rmsprop"), "optimizer (--optimizer)"),
        (lambda: TrainConfig(class_weights="heavy"), "class_weights (--class-weights)"),
        (lambda: FeatureConfig(n_fft=8, mel=4), "n_fft (--n-fft)"),
    ):
        with pytest.raises(UsageError) as exc:
            make()
        assert text in str(exc.value), str(exc.value)


def _params(command: str) -> dict[str, object]:
    """``{flag: default}`` of a command's visible options."""
    cmd = typer.main.get_command(app).commands[command]
    return {opt: p.default for p in cmd.params if not getattr(p, "hidden", False) for opt in getattr(p, "opts", []) if opt.startswith("--")}


def test_run_takes_the_stage_options_with_their_defaults():
    run = _params("run")
    stages = {
        **_params("fetch"),
        **_params("segment"),
        **_params("featurize"),
        **_params("train"),
        "--split": _params("evaluate")["--split"],
    }
    exposed = {o.flag for cls in (FetchOptions, SegmentConfig, FeatureConfig, TrainConfig) for o in cls.cli_options()}
    exposed -= {"--seed", "--resume"}  # run has one --seed (split and training); resume is per model file
    missing = sorted(f for f in exposed if f.split("/")[0] not in run)
    assert missing == []
    differ = {f: (run[f], stages[f]) for f in run if f in stages and run[f] != stages[f]}
    assert differ == {"--model": ("svm", "cnn6")}  # the declared run defaults (pipeline.RUN_DEFAULTS)
    assert pipeline.RUN_DEFAULTS == {"train": {"model": "svm"}}
    assert pipeline.PipelineConfig().train.model == "svm"
    hop = next(p for p in typer.main.get_command(app).commands["run"].params if "--hop" in getattr(p, "opts", []))
    assert run["--hop"] is None and "half the window" in hop.help
    assert run["--split"] == "test" and run["--split-mode"] == _params("fetch")["--split-mode"] == "default"


def test_run_overlaps_windows_by_half_whatever_their_length():
    assert pipeline.PipelineConfig().segment.hop == 1.5  # the 3 s default window
    assert pipeline.PipelineConfig(segment=SegmentConfig(seconds=1.0)).segment.hop == 0.5  # no gaps between 1 s windows
    assert pipeline.PipelineConfig(segment=SegmentConfig(seconds=10.0)).segment.hop == 5.0
    frames = pipeline.PipelineConfig(segment=SegmentConfig(frames=128, frame_hop=512)).segment
    assert frames.hop_samples == (127 * 512) // 2
    assert pipeline.PipelineConfig(segment=SegmentConfig(seconds=1.0, hop=1.0)).segment.hop == 1.0  # --hop given: kept


def test_run_adds_the_models_paper_features_only_where_an_input_is_unfilled():
    assert pipeline.features_for("cnn6", FeatureConfig()).names() == ["mel"] and pipeline.features_for("cnn6", FeatureConfig()).mel == 128
    assert pipeline.features_for("cnn6", FeatureConfig(mel=32)) == FeatureConfig(mel=32)
    assert pipeline.features_for("cnn6", FeatureConfig(handcrafted=True)).names() == ["mel", "handcrafted"]
    assert pipeline.features_for("lstm", FeatureConfig()).mfcc_frames == (30, 30)
    assert pipeline.features_for("cnn-mlp", FeatureConfig()).names() == ["mel", "handcrafted"]


def test_split_names_are_checked_up_front(tmp_path):
    r = genre("run", "--split", "random", "--dry-run", "--workdir", tmp_path)
    assert r.exit_code == 2 and "unknown split (--split) 'random'" in r.stderr and "--split-mode random" in r.stderr
    r = genre("run", "--split-mode", "bogus", "--dry-run", "--workdir", tmp_path)
    assert r.exit_code == 2 and "split (--split-mode)" in r.stderr
    r = genre("fetch", "demo", "--split-mode", "bogus", "--dry-run", "--workdir", tmp_path)
    assert r.exit_code == 2 and "valid: default, random, official" in r.stderr
    r = genre("evaluate", tmp_path / "m.h5", tmp_path / "f.h5", "--split", "holdout")
    assert r.exit_code == 2 and "unknown split (--split) 'holdout'" in r.stderr  # before any file is read
    assert not list(tmp_path.iterdir())  # nothing ran


def test_former_spellings_still_work_with_a_notice(tmp_path, rng):
    music = write_folder(tmp_path / "music", per_label=2, seconds=0.5, sr=8000, rng=rng)
    old = genre("fetch", "folder", "--from", music, "--split", "random", "--dry-run", "--workdir", tmp_path)
    new = genre("fetch", "folder", "--from", music, "--split-mode", "random", "--dry-run", "--workdir", tmp_path)
    assert old.exit_code == new.exit_code == 0 and old.stdout == new.stdout  # same fingerprint, same output name
    assert "--split is now --split-mode" in old.stderr and "notice" not in new.stderr
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("filename,f1,label\n" + "".join(f"t{i}.wav,{i},{'ab'[i % 2]}\n" for i in range(10)))
    old = genre("featurize", "--table", csv_path, "--table-split", "random", "--dry-run", "--workdir", tmp_path)
    new = genre("featurize", "--table", csv_path, "--split-mode", "random", "--dry-run", "--workdir", tmp_path)
    assert old.exit_code == new.exit_code == 0 and old.stdout == new.stdout and "--table-split is now --split-mode" in old.stderr
