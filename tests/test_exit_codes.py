"""One exit-code rule for every command (README, "Exit codes and errors"):
0 ok; 1 a failed run; 2 bad usage or bad input; 130 interrupted.

Every command is walked with bad input here (exit 2); failed runs (exit 1) are tested where
they happen: a write that fails (tests/test_robustness.py), an output locked by another
process (tests/test_interrupt.py), a download that fails (tests/test_download.py), some files
of a predict batch failing (tests/test_robustness.py), an unexpected exception
(tests/test_cli.py); interrupts (130): tests/test_interrupt.py and tests/test_cli.py.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import genre, write_folder


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("codes")
    root = write_folder(tmp / "music", per_label=4, seconds=2.0, sr=16000, rng=np.random.default_rng(5))
    p = {k: tmp / f"{k}.h5" for k in ("idx", "seg", "feat", "model", "sk")}
    p["root"], p["empty"], p["fake"], p["audio"] = root, tmp / "empty", tmp / "fake.wav", root / "low" / "low0.wav"
    p["empty"].mkdir()
    p["truncated"] = tmp / "genres.tar.gz"
    with tarfile.open(p["truncated"], "w:gz") as tar:
        tar.add(root, arcname="genres")
    p["truncated"].write_bytes(p["truncated"].read_bytes()[:300])
    p["fake"].write_bytes(b"RIFF not really")
    assert genre("fetch", "folder", "--from", root, "-o", p["idx"]).exit_code == 0
    assert genre("segment", p["idx"], "--seconds", "1", "--sr", "16000", "-o", p["seg"]).exit_code == 0
    assert genre("featurize", p["seg"], "--mel", "8", "--handcrafted", "--jobs", "1", "-o", p["feat"]).exit_code == 0
    r = genre("train", p["feat"], "--model", "cnn6", "--epochs", "1", "--device", "cpu", "-o", p["model"])
    assert r.exit_code == 0, r.stderr
    assert genre("train", p["feat"], "--model", "logreg", "-o", p["sk"]).exit_code == 0
    return p


#: (command, argv with {placeholders} from the chain, expected words in stderr). Every one exits 2.
BAD = [
    ("genre", ["nosuchcommand"], "No such command"),
    ("fetch", ["nosuchset"], "unknown dataset 'nosuchset'"),
    ("fetch", ["folder", "--from", "{empty}"], "no audio files found"),
    ("fetch", ["folder", "--from", "{root}/nope"], "no such directory"),
    ("fetch", ["folder", "--from", "{root}", "--split-mode", "sideways"], "sideways"),
    ("fetch", ["folder", "--from", "{root}", "--jobs", "0"], "--jobs"),
    ("fetch", ["gtzan", "--from", "{root}", "--root", "{tmp}/data"], "no GTZAN layout found"),
    ("fetch", ["gtzan", "--from", "{truncated}", "--root", "{tmp}/data"], "archive damaged or truncated"),
    ("segment", ["{tmp}/missing.h5"], "does not exist"),
    ("segment", ["{feat}"], "expected fetch"),
    ("segment", ["{idx}", "--seconds", "-1"], "--seconds"),
    ("segment", ["{idx}", "--last", "trim"], "trim"),
    ("segment", ["{idx}", "--seconds", "100"], "shorter than one window"),
    ("featurize", ["{seg}"], "no feature"),
    ("featurize", ["{idx}", "--mel", "8"], "expected segment"),
    ("featurize", ["{seg}", "--mel", "-3"], "--mel"),
    ("featurize", ["{seg}", "--table", "{tmp}/t.csv"], "not both"),
    ("featurize", ["--table", "{tmp}/missing.csv"], "cannot read"),
    ("train", [], "missing FEATURES"),
    ("train", ["{feat}", "--model", "nosuchmodel"], "unknown model"),
    ("train", ["{feat}", "--model", "svm", "--class-weights", "heavy"], "heavy"),
    ("train", ["{feat}", "--model", "svm", "--device", "gpu"], "unknown device 'gpu'"),
    ("train", ["{feat}", "--model", "cnn6", "--epochs", "0"], "--epochs"),
    ("train", ["{feat}", "--model", "mlp", "--input", "vector=mel"], "cannot fill"),
    ("train", ["{seg}"], "expected featurize"),
    ("evaluate", ["{model}"], "at least one model"),
    ("evaluate", ["{model}", "{feat}", "--split", "nosuchsplit"], "nosuchsplit"),
    ("evaluate", ["{model}", "{feat}", "--aggregate", "median"], "median"),
    ("evaluate", ["{feat}", "{feat}"], "expected train"),
    ("evaluate", ["{model}", "{feat}", "--device", "tpu"], "unknown device 'tpu'"),
    ("predict", ["{model}", "{empty}"], "no audio files found"),
    ("predict", ["{model}", "{audio}", "--format", "xml"], "xml"),
    ("predict", ["{model}", "{audio}", "--top-k", "0"], "--top-k"),
    ("predict", ["{feat}", "{audio}"], "expected train"),
    ("predict", ["{model}", "{fake}"], "not decodable"),
    ("serve", ["nosuchmodel"], "unknown model 'nosuchmodel'"),
    ("serve", ["{tmp}/missing.h5"], "does not exist"),
    ("serve", ["{feat}"], "expected train"),
    ("serve", ["{model}", "--port", "70000"], "--port"),
    ("serve", ["{model}", "--device", "gpu"], "unknown device 'gpu'"),
    ("models", ["nosuchmodel"], "unknown built-in model 'nosuchmodel'"),
    ("fetch", ["model", "nosuch"], "unknown model to fetch 'nosuch'"),
    ("run", ["--split", "nosuchsplit"], "nosuchsplit"),
    ("run", ["--model", "nosuchmodel"], "unknown model"),
    ("run", ["--dataset", "folder", "--from", "{empty}"], "no audio files found"),
    ("info", ["{fake}"], "not a readable HDF5 file"),
    ("info", ["{tmp}/missing.h5"], "does not exist"),
    ("--debug", ["info", "{fake}"], "not a readable HDF5 file"),  # --debug shows the traceback, keeps the code
]

#: CUDA asked for without a GPU: exit 2 for every command that runs a model, sklearn models included.
CUDA = [
    ("train", ["{feat}", "--model", "cnn6", "--device", "cuda", "--epochs", "1"]),
    ("train", ["{feat}", "--model", "logreg", "--device", "cuda"]),
    ("train", ["{feat}", "--model", "svm", "--device", "cuda:1"]),
    ("evaluate", ["{model}", "{feat}", "--device", "cuda"]),
    ("evaluate", ["{sk}", "{feat}", "--device", "cuda"]),
    ("predict", ["{model}", "{audio}", "--device", "cuda"]),
    ("predict", ["{sk}", "{audio}", "--device", "cuda"]),
    ("run", ["--model", "svm", "--device", "cuda"]),
    ("serve", ["{model}", "--device", "cuda"]),
    ("serve", ["{sk}", "--device", "cuda"]),
]


def _argv(argv: list[str], chain: dict[str, Path], tmp: Path) -> list[str]:
    return [a.format(tmp=tmp, **chain) for a in argv]


@pytest.mark.parametrize("command, argv, words", BAD, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BAD)])
def test_bad_input_or_usage_exits_2(chain, tmp_path, command, argv, words):
    full = ([] if command == "genre" else [command]) + _argv(argv, chain, tmp_path)
    if command in ("fetch", "segment", "featurize", "train", "evaluate") and "-o" not in full and full[0] != "--debug":
        full += ["-o", tmp_path / "out.h5"]
    if command == "run":
        full += ["--workdir", tmp_path / "w"]
    r = genre(*full)
    assert r.exit_code == 2, (full, r.stderr[-2000:])
    assert words in r.stderr, r.stderr[-2000:]
    if command == "--debug":
        assert "Traceback" in r.stderr
    else:
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "out.h5").exists() and not list(tmp_path.glob(".out.h5*"))


@pytest.mark.parametrize("command, argv", CUDA, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CUDA)])
def test_cuda_without_a_gpu_exits_2_for_every_model_kind(chain, tmp_path, command, argv):
    if _has_cuda():
        pytest.skip("a GPU is present")
    full = [command, *_argv(argv, chain, tmp_path)]
    if command in ("train", "evaluate"):
        full += ["-o", tmp_path / "out.h5"]
    if command == "run":
        full += ["--workdir", tmp_path / "w"]
    r = genre(*full)
    assert r.exit_code == 2, (full, r.stderr[-2000:])
    assert "no CUDA device is available" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""  # refused before any work: no output, nothing written
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "w").exists()


def test_ok_is_0(chain, tmp_path):
    r = genre("predict", chain["model"], chain["audio"])
    assert r.exit_code == 0 and r.stdout.startswith(str(chain["audio"]))
